"""A VLMHyperBench v0.1 folder tree written by the tests, with the project's own content.

The shapes follow v0.1 exactly (``;``-separated, UTF-8 with a BOM, CRLF line ends, list cells
like ``['CER']``, ``Datasets/<task>/<name>/annotation.csv``, ``PromptCollections/<task>/<name>/``
CSVs keyed by ``"<doc_class> <question_type>"``, the task CSVs and ``vlm_base.csv``); the
documents, prompts and models are invented here and the images are drawn with Pillow + DejaVu.
The real v0.1 files of the compat folder beside the checkout stay an extra check
(``test_data_v01_compat.py``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

TASK = "VQA"
NAME = "mini_ru"
TASK_COLUMNS = [
    "dataset",
    "task",
    "framework",
    "model_name",
    "system_prompt",
    "prompt_collection",
    "metrics",
    "only_evaluate_metrics",
    "metrics_aggregators",
    "filter_doc_class",
    "filter_question_type",
]
AGGREGATORS = "['by_id', 'by_doc_question', 'by_doc_type', 'general']"

# data_index -> (image file, doc_class, {question_type: answer}); invented people and firms.
DOCUMENTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "1": (
        "images/1.jpg",
        "passport",
        {
            "Серия и номер паспорта": "4 512 381 902",
            "Фамилия": "Жаворонков",
            "Имя": "Олег",
            "Отчество": "Игоревич",
            "Дата рождения": "07.03.1991",
            "Пол": "муж.",
            "Место рождения": "Гор. Вольск Саратовской области",
        },
    ),
    "2": (
        "images/2.jpg",
        "passport",
        {
            "Серия и номер паспорта": "6 003 117 245",
            "Фамилия": "Селезнева",
            "Имя": "Виктория",
            "Отчество": "Павловна",
            "Дата рождения": "14.06.1983",
            "Пол": "жен.",
            "Место рождения": "Пос. Лесной Кировской обл.",
        },
    ),
    "3": (
        "images/3.png",
        "invoice",
        {
            "Номер счет-фактуры": "17",
            "Дата счет-фактуры": "21 марта 2011",
            "Продавец": "Волгаэнерго",
            "Покупатель": "ЗАО «Ветров-Лисицын»",
        },
    ),
    "4": (
        "images/4.png",
        "invoice",
        {
            "Номер счет-фактуры": "52",
            "Дата счет-фактуры": "19 апреля 2024",
            "Продавец": "Группа Север-Юг",
            "Покупатель": "АО «Орлов, Соколов и партнёры»",
        },
    ),
}
SPLITS = {"1": "test_clean", "2": "test_clean", "3": "test_blur", "4": "test_clean"}
PROMPT_FILES = ("ours_field_prompts_a.csv", "ours_field_prompts_b.csv")
MODELS = ("Qwen2-VL-2B-Instruct", "Qwen2.5-VL-3B-Instruct")


@dataclass(frozen=True)
class V01Tree:
    """Where the written v0.1 tree lies."""

    root: Path

    @property
    def dataset(self) -> Path:
        """``Datasets/VQA/mini_ru``."""
        return self.root / "Datasets" / TASK / NAME

    @property
    def prompts(self) -> Path:
        """``PromptCollections/VQA/mini_ru``."""
        return self.root / "PromptCollections" / TASK / NAME

    @property
    def model_eval(self) -> Path:
        """The task CSV evaluating two models."""
        return self.root / "user_config_model_eval.csv"

    @property
    def prompt_eval(self) -> Path:
        """The task CSV filtered to one doc class and question type."""
        return self.root / "user_config_prompt_eval.csv"

    @property
    def vlm_base(self) -> Path:
        """``vlm_base.csv``."""
        return self.root / "vlm_base.csv"


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """v0.1 CSV bytes: BOM, ``;``, CRLF (what the Windows-edited originals look like)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))


def _draw(path: Path, doc_class: str, fields: dict[str, str]) -> list[list[int]]:
    """Draw the document with DejaVu; returns each field's bbox [x0, y0, x1, y1]."""
    from PIL import Image, ImageDraw

    from vlmhb.data.synth.fonts import font

    image = Image.new("RGB", (820, 60 + 44 * len(fields)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 12), "ПАСПОРТ" if doc_class == "passport" else "СЧЁТ", font=font(26, True))
    boxes = []
    for index, (label, value) in enumerate(fields.items()):
        y = 56 + 44 * index
        draw.text((20, y), f"{label}:", font=font(20))
        box = draw.textbbox((330, y), value, font=font(22, serif=True))
        draw.text((330, y), value, font=font(22, serif=True), fill="black")
        boxes.append([int(v) for v in box])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=92) if path.suffix == ".jpg" else image.save(path)
    return boxes


def _annotation_rows(dataset: Path) -> list[list[str]]:
    rows = []
    for index, (image, doc_class, fields) in DOCUMENTS.items():
        split = SPLITS[index]
        boxes = _draw(dataset / image, doc_class, fields)
        for (question_type, answer), box in zip(fields.items(), boxes, strict=True):
            question = f"Напиши {question_type}"
            rows.append([index, split, image, question, answer, doc_class, question_type, str(box)])
    return rows


def _prompt_rows(variant: int) -> list[list[str]]:
    rows = []
    seen: dict[str, None] = {}
    for _, doc_class, fields in DOCUMENTS.values():
        for question_type in fields:
            key = f"{doc_class} {question_type}"
            if key in seen:
                continue
            seen[key] = None
            tail = " Ответ дай одной строкой, без пояснений." if variant else ""
            prompt = f"Найди на изображении поле «{question_type}» и выпиши его значение.{tail}"
            rows.append([prompt, key, f"{0.05 * variant:.2f}"])
    return rows


def _task_rows(filtered: bool) -> list[list[str]]:
    rows = []
    for model, prompts in zip(MODELS, PROMPT_FILES, strict=True):
        doc_class, question_type = ("passport", "Серия и номер паспорта") if filtered else ("", "")
        rows.append(
            [
                NAME,
                TASK,
                "Hugging Face",
                model,
                "",
                f"{NAME}/{prompts}",
                "['CER']",
                "False",
                AGGREGATORS,
                doc_class,
                question_type,
            ]
        )
    return rows


def v01_references() -> list[dict[str, object]]:
    """The ground truth as ``references.jsonl`` rows (what the runner would write for it)."""
    return [
        {
            "doc_id": index,
            "doc_type": doc_class,
            "fields": dict(fields),
            "text": None,
            "tags": [SPLITS[index]],
            "images": [],
        }
        for index, (_, doc_class, fields) in DOCUMENTS.items()
    ]


def write_v01_tree(root: Path) -> V01Tree:
    """Write a complete v0.1 tree (datasets, prompts, task CSVs, vlm_base) under ``root``."""
    tree = V01Tree(root)
    header = "data_index;split;image_path;question;answer;doc_class;question_type;answer_bbox"
    _write_csv(tree.dataset / "annotation.csv", header.split(";"), _annotation_rows(tree.dataset))
    for variant, name in enumerate(PROMPT_FILES):
        _write_csv(
            tree.prompts / name, ["prompt", "doc_class_question_type", "cer"], _prompt_rows(variant)
        )
    _write_csv(tree.model_eval, TASK_COLUMNS, _task_rows(filtered=False))
    _write_csv(tree.prompt_eval, TASK_COLUMNS, _task_rows(filtered=True))
    base_header = [
        "framework",
        "model_family",
        "model_name",
        "docker_image",
        "git_python_package",
        "python_package",
        "module",
        "class_name",
    ]
    _write_csv(
        tree.vlm_base,
        base_header,
        [
            [
                "Hugging Face",
                "Qwen2-VL",
                "Qwen2-VL-2B-Instruct",
                "example.org/ours/qwen2-vl:cu124",
                "git+https://example.org/ours/model_qwen2-vl.git@0.0.1",
                "model_qwen2_vl",
                "models",
                "Qwen2VLModel",
            ],
            [
                "Hugging Face",
                "Qwen2.5-VL",
                "Qwen2.5-VL-3B-Instruct",
                "example.org/ours/qwen2.5-vl:cu124",
                "git+https://example.org/ours/model_qwen2.5-vl.git@0.0.1",
                "model_qwen2_5_vl",
                "models",
                "Qwen2_5_VLModel",
            ],
        ],
    )
    return tree
