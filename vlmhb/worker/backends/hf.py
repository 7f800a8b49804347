"""The Hugging Face transformers backend: ``AutoProcessor`` + ``AutoModelForImageTextToText``.

Generic through chat templates: each request becomes ``[system?, user(images..., prompt)]``,
rendered by the processor's template, and a whole batch goes through one ``generate`` call
(left padding). Greedy unless the generation parameters ask for sampling.

Load options (``init.load``): ``dtype`` (``auto`` | ``float32`` | ``bfloat16`` | ``float16``),
``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``), ``device_map`` (passed through, e.g.
``auto`` for a model spread over GPUs), ``min_pixels`` / ``max_pixels`` (Qwen2-VL and
Qwen2.5-VL image budgets, given to the processor), ``trust_remote_code``,
``attn_implementation``, ``threads`` (torch CPU threads), ``log_prompts`` / ``log_tokens``
(write each rendered prompt / each answer's token ids to stderr, i.e. the worker log).

Generation parameters: ``max_new_tokens`` (default 256), ``temperature`` (> 0 samples),
``top_p``, ``top_k``, ``repetition_penalty``, ``seed``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from typing import Any, NamedTuple

from vlmhb.worker.backends.base import LoadInfo, Result, package_versions
from vlmhb.worker.backends.chat import build_messages, merged_generation
from vlmhb.worker.protocol import Init, Request, Response

DEFAULT_MAX_NEW_TOKENS = 256
DTYPES = ("auto", "float32", "bfloat16", "float16")
PASSED_TO_GENERATE = ("top_p", "top_k", "repetition_penalty")


def import_or_explain(module: str, env_hint: str = "hf-cpu"):  # type: ignore[no-untyped-def]
    """Import ``module``, or raise one line naming the missing package and the env to use."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(
            f"the hf backend needs the {module!r} package, not importable in {sys.executable} "
            f"({exc}); run it in an env that has it (e.g. {env_hint})"
        ) from exc


def pick_device(torch: Any, device: str) -> str:
    """``auto`` means CUDA when there is one, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but torch sees no CUDA GPU")
    return device


def dtype_keyword(version: str) -> str:
    """``dtype`` for transformers >= 4.56, ``torch_dtype`` before."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]]
    return "dtype" if tuple(parts) >= (4, 56) else "torch_dtype"


def describe_missing_model(model: str, exc: Exception) -> str:
    """One line: the model id, where it was looked for, and whether the hub was off."""
    try:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    except ImportError:
        cache = os.environ.get("HF_HUB_CACHE", "~/.cache/huggingface/hub")
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    where = f"not a local folder, and not in the Hugging Face cache {cache}"
    hub = " (HF_HUB_OFFLINE=1: nothing was fetched)" if offline else ""
    return f"model {model!r} not found: {where}{hub}; {type(exc).__name__}: {exc}"


class Prepared(NamedTuple):
    """One request ready for ``generate``: its place in the batch, id, prompt text, images."""

    position: int
    request_id: str
    text: str
    images: list[Any]


class HFBackend:
    """One transformers model answering batches of chat requests."""

    default_batch_size = 8  # static batching: padded batches; larger ones waste compute

    def __init__(self) -> None:
        self.torch: Any = None
        self.model: Any = None
        self.processor: Any = None
        self.device = "cpu"
        self.options: dict[str, Any] = {}
        self.generation: dict[str, Any] = {}
        self.system_folded = False

    # -- loading -------------------------------------------------------------------------------

    def load(self, init: Init) -> LoadInfo:
        self.options = dict(init.load)
        self.generation = dict(init.generation)
        torch = self.torch = import_or_explain("torch")
        transformers = import_or_explain("transformers")
        if self.options.get("threads"):
            torch.set_num_threads(int(self.options["threads"]))
        dtype = str(self.options.get("dtype", "auto"))
        if dtype not in DTYPES:
            raise RuntimeError(f"dtype {dtype!r} not supported; use one of {', '.join(DTYPES)}")
        self.device = pick_device(torch, str(self.options.get("device", "auto")))
        trust = bool(self.options.get("trust_remote_code", False))
        processor_kwargs: dict[str, Any] = {"trust_remote_code": trust}
        if self.options.get("revision"):
            processor_kwargs["revision"] = str(self.options["revision"])
        for key in ("min_pixels", "max_pixels"):
            if self.options.get(key) is not None:
                processor_kwargs[key] = int(self.options[key])
        model_kwargs: dict[str, Any] = {
            "trust_remote_code": trust,
            dtype_keyword(transformers.__version__): (
                dtype if dtype == "auto" else getattr(torch, dtype)
            ),
        }
        if self.options.get("revision"):
            model_kwargs["revision"] = str(self.options["revision"])
        if self.options.get("attn_implementation"):
            model_kwargs["attn_implementation"] = self.options["attn_implementation"]
        if self.options.get("device_map"):
            model_kwargs["device_map"] = self.options["device_map"]
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(
                init.model, **processor_kwargs
            )
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(
                init.model, **model_kwargs
            )
        except OSError as exc:
            raise RuntimeError(describe_missing_model(init.model, exc)) from exc
        if not self.options.get("device_map"):
            self.model.to(self.device)
        self.model.eval()
        tokenizer = self.tokenizer
        if not (getattr(self.processor, "chat_template", None) or tokenizer.chat_template):
            raise RuntimeError(
                f"model {init.model!r} has no chat template (processor or tokenizer)"
            )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        versions = package_versions("torch", "transformers", "tokenizers", "accelerate")
        versions["dtype"] = str(self.model.dtype).removeprefix("torch.")
        return LoadInfo(device=self.describe_device(), versions=versions)

    @property
    def tokenizer(self) -> Any:
        """The processor's tokenizer (or the processor itself when it is a tokenizer)."""
        return getattr(self.processor, "tokenizer", self.processor)

    def describe_device(self) -> str:
        """``cpu``, or ``cuda:0 (NVIDIA H100 …)``."""
        device = str(self.model.device)
        if device.startswith("cuda"):
            return f"{device} ({self.torch.cuda.get_device_name(self.model.device)})"
        return device

    # -- answering -----------------------------------------------------------------------------

    def generate(self, batch: list[Request]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        groups: dict[str, list[Prepared]] = {}
        params_by_key: dict[str, dict[str, Any]] = {}
        for index, request in enumerate(batch):
            try:
                text, images = self.prepare(request)
            except (ValueError, OSError) as exc:
                results[index] = f"{type(exc).__name__}: {exc}"
                continue
            params = merged_generation(self.generation, request)
            key = json.dumps(params, sort_keys=True, default=str)
            params_by_key[key] = params
            groups.setdefault(key, []).append(Prepared(index, request.id, text, images))
        for key, members in groups.items():
            answers = self.run_group(members, params_by_key[key])
            for member, answer in zip(members, answers, strict=True):
                results[member.position] = answer
        return [r if r is not None else "no result" for r in results]

    def prepare(self, request: Request) -> tuple[str, list[Any]]:
        """The rendered prompt and the opened images of one request (raises on bad input)."""
        from PIL import Image, UnidentifiedImageError

        if not request.prompt.strip():
            raise ValueError("empty prompt")
        images = []
        for path in request.images:
            try:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            except (UnidentifiedImageError, OSError) as exc:
                raise ValueError(f"unreadable image {path}: {exc}") from exc
        text = self.render(request)
        if self.options.get("log_prompts"):
            print(f"[hf] prompt {request.id}: {text!r}", file=sys.stderr, flush=True)
        return text, images

    def render(self, request: Request) -> str:
        """The chat template's text for one request, with the generation prompt appended.

        A template that refuses a system turn (some do, with a ``TemplateError``) gets the
        system prompt as the first paragraph of the user's text instead, said once in the log.
        """
        from jinja2 import TemplateError

        try:
            return self.apply_template(build_messages(request))
        except TemplateError:
            if not (request.system and request.system.strip()):
                raise
        if not self.system_folded:
            self.system_folded = True
            print(
                "[hf] chat template refuses a system turn: system prompt folded into the user text",
                file=sys.stderr,
                flush=True,
            )
        folded = replace(request, system=None, prompt=f"{request.system}\n\n{request.prompt}")
        return self.apply_template(build_messages(folded))

    def apply_template(self, messages: list[dict[str, Any]]) -> str:
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def run_group(self, members: list[Prepared], params: dict[str, Any]) -> list[Result]:
        """One ``generate`` call for requests sharing their generation parameters."""
        torch = self.torch
        texts = [member.text for member in members]
        images = [image for member in members for image in member.images]
        inputs = self.processor(
            text=texts, images=images or None, padding=True, return_tensors="pt"
        ).to(self.model.device)
        inputs.pop("token_type_ids", None)  # some tokenizers add it; generate() rejects it
        max_new = int(
            params.get("max_new_tokens") or params.get("max_tokens") or DEFAULT_MAX_NEW_TOKENS
        )
        kwargs: dict[str, Any] = {"max_new_tokens": max_new}
        temperature = float(params.get("temperature", 0) or 0)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
            if "seed" in params:
                torch.manual_seed(int(params["seed"]))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        for key in PASSED_TO_GENERATE:
            if params.get(key) is not None and (temperature > 0 or key == "repetition_penalty"):
                kwargs[key] = params[key]
        tokenizer = self.tokenizer
        kwargs["pad_token_id"] = tokenizer.pad_token_id
        start = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        elapsed = time.perf_counter() - start
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:].tolist()
        prompt_counts = inputs["attention_mask"].sum(dim=1).tolist()
        stop_ids = self.stop_token_ids()
        answers: list[Result] = []
        for member, row, prompt_tokens in zip(members, new_tokens, prompt_counts, strict=True):
            kept, finish = cut_at_stop(row, stop_ids, max_new)
            if self.options.get("log_tokens"):
                ids = row[: len(kept) + 1] if finish == "stop" else kept
                print(f"[hf] tokens {member.request_id}: {ids}", file=sys.stderr, flush=True)
            answers.append(
                Response(
                    id=member.request_id,
                    text=tokenizer.decode(kept, skip_special_tokens=True),
                    latency_s=elapsed,
                    prompt_tokens=int(prompt_tokens),
                    output_tokens=len(kept) + (finish == "stop"),
                    finish_reason=finish,
                )
            )
        return answers

    def stop_token_ids(self) -> set[int]:
        """The ids that end generation: the generation config's eos ids and the tokenizer's."""
        ids = self.model.generation_config.eos_token_id
        found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            found.add(self.tokenizer.eos_token_id)
        return found

    def close(self) -> None:
        self.model = None
        self.processor = None


def cut_at_stop(row: list[int], stop_ids: set[int], max_new: int) -> tuple[list[int], str]:
    """The generated tokens before the first stop token, and why generation ended."""
    for position, token in enumerate(row):
        if token in stop_ids:
            return row[:position], "stop"
    return row, "length" if len(row) >= max_new else "stop"
