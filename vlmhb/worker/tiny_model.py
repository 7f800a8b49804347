"""Build the tiny random LLaVA-style model the tests run: ``python -m vlmhb.worker.tiny_model OUT``.

Runs inside a model env with torch + transformers + tokenizers (``hf-cpu``). What it makes, in
about a second and ~1 MB: a tiny CLIP vision tower and a tiny Llama joined by the LLaVA
projector, a byte-level BPE tokenizer trained with ``tokenizers`` on a few Russian and English
lines, ``CLIPImageProcessorPil``, and a chat template that renders system, user and image turns.
The same seed gives byte-identical files.

Shapes follow what vLLM's CPU path accepts: head_dim 32 (hidden 64, 2 heads). The vision tower
keys are written as ``vision_tower.vision_model.…`` (what vLLM expects; transformers 5
strips that prefix again when loading).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

IMAGE_SIZE = 32
PATCH_SIZE = 8
HIDDEN = 64
HEADS = 2
VOCAB = 512
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{{ '\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{{ '\\n' }}{% endif %}"
)

CORPUS = """\
Паспорт гражданина Российской Федерации. Фамилия: Иванов. Имя: Иван. Отчество: Иванович.
Дата рождения: 01.02.1990. Место рождения: город Москва. Серия 45 10 номер 123456.
СНИЛС 123-456-789 01. ИНН 7707083893. Выдан отделом УФМС России по городу Санкт-Петербургу.
Свидетельство о рождении. Водительское удостоверение. Полис обязательного медицинского страхования.
Счёт-фактура № 17 от 12 марта 2024 года. Итого к оплате: 15 300,00 рублей. Ёлка, щука, съезд.
Read the document and answer the question. Extract every field as JSON.
The passport number, the date of birth and the full name of the holder.
You are a careful assistant that reads Russian documents. Answer with the value only.
Прочитайте документ и ответьте на вопрос. Извлеките все поля в формате JSON.
"""


def train_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on ``CORPUS``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS.splitlines() * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=CHAT_TEMPLATE,
    )


def build_model(vocab_size: int, image_token_id: int, pad_id: int, bos_id: int, eos_id: int):  # type: ignore[no-untyped-def]
    """The random LLaVA model: CLIP tower (2 layers) + Llama (2 layers), head_dim 32."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    vision = CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=4 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=HIDDEN,
    )
    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=1024,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=False,
        initializer_range=0.2,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        tie_word_embeddings=False,
    )
    config.initializer_range = 0.2
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = pad_id
    model.generation_config.bos_token_id = bos_id
    model.generation_config.eos_token_id = eos_id
    model.generation_config.do_sample = False
    return model.eval()


def rename_vision_keys(weights_file: Path) -> None:
    """Rewrite ``vision_tower.X`` as ``vision_tower.vision_model.X`` (the names vLLM expects)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights_file))
    renamed = {}
    for key, value in tensors.items():
        head, sep, rest = key.partition("vision_tower.")
        if sep and head in ("", "model.") and not rest.startswith("vision_model."):
            key = f"{head}vision_tower.vision_model.{rest}"
        renamed[key] = value.contiguous()
    save_file(dict(sorted(renamed.items())), str(weights_file), metadata={"format": "pt"})


def build_tiny_model(out: Path, seed: int = 0) -> Path:
    """Write the tiny model, tokenizer, processor and chat template into ``out``; return it."""
    import torch
    from transformers import LlavaProcessor

    try:  # transformers 5; 4.x has only the (PIL-based) CLIPImageProcessor
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor as ImageProcessor

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    model = build_model(
        len(tokenizer),
        image_token_id,
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    image_processor = ImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    rename_vision_keys(out / "model.safetensors")
    (out / "vlmhb_tiny.json").write_text(
        json.dumps({"seed": seed, "made_by": "vlmhb.worker.tiny_model"}) + "\n", encoding="utf-8"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m vlmhb.worker.tiny_model OUT [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the model into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out, args.seed)
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    print(f"tiny model written to {path} ({size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
