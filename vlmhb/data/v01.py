"""VLMHyperBench v0.1 files read as they are: ``annotation.csv``, prompt CSVs, ``vlm_base.csv``.

All three are ``;``-separated UTF-8 with a BOM. In ``annotation.csv`` each row is one question
about one image; rows of the same image become one ``Document`` (id = ``data_index``,
``doc_class`` → ``doc_type``, ``question_type`` → field name, ``answer`` → value). The
question text, ``answer_bbox``, ``split`` and ``data_index`` are kept in ``meta`` so nothing
is lost on the way to the native format.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmhb.data.documents import Dataset, Document, DocumentList
from vlmhb.data.images import resolve_image
from vlmhb.errors import DatasetError, PlanError, Problem, VlmhbError

ANNOTATION_CSV = "annotation.csv"
ANNOTATION_COLUMNS = (
    "data_index",
    "split",
    "image_path",
    "question",
    "answer",
    "doc_class",
    "question_type",
    "answer_bbox",
)
PROMPT_COLUMNS = ("prompt", "doc_class_question_type")
VLM_BASE_COLUMNS = (
    "framework",
    "model_family",
    "model_name",
    "docker_image",
    "python_package",
    "module",
    "class_name",
)


@dataclass(frozen=True)
class V01Model:
    """One row of v0.1 ``vlm_base.csv``: where a model's code came from."""

    framework: str
    model_family: str
    model_name: str
    docker_image: str
    python_package: str
    module: str
    class_name: str
    git_python_package: str = ""


@dataclass(frozen=True)
class V01Prompt:
    """One row of a v0.1 prompt collection, keyed by ``"<doc_class> <question_type>"``."""

    key: str
    prompt: str
    cer: str
    line: int


def read_rows(
    path: Path, required: tuple[str, ...], error: Callable[[list[Problem]], VlmhbError]
) -> list[dict[str, str]]:
    """Rows of a v0.1 CSV as dicts (``_line`` = 1-based file line); a missing column raises."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=";")
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise error([Problem(str(path), 1, c, "column missing") for c in missing])
            rows = []
            for row in reader:
                rows.append(
                    {k: (v or "") for k, v in row.items() if k} | {"_line": str(reader.line_num)}
                )
            return rows
    except FileNotFoundError as exc:
        raise error([Problem(str(path), None, None, "file not found")]) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise error([Problem(str(path), None, None, f"cannot read: {exc}")]) from exc


def read_v01_dataset(root: Path) -> Dataset:
    """Read a v0.1 dataset folder (``annotation.csv`` plus its images) into documents."""
    root = root.resolve()
    path = root / ANNOTATION_CSV
    rows = read_rows(path, ANNOTATION_COLUMNS, DatasetError)
    problems: list[Problem] = []
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(row["image_path"], []).append(row)
    owner: dict[str, str] = {}
    documents = DocumentList()
    for image_path, group in groups.items():
        first = group[0]
        doc_id = first["data_index"].strip() or Path(image_path).stem
        if doc_id in owner:
            problems.append(
                Problem(
                    str(path),
                    int(first["_line"]),
                    "data_index",
                    f"data_index {doc_id!r} already used by image {owner[doc_id]!r}",
                )
            )
            doc_id = f"{doc_id}:{image_path}"
        owner[doc_id] = image_path
        documents.append(_document(root, path, doc_id, image_path, group, problems))
    return Dataset(root, root.name, documents, problems, annotation_file=path)


def _document(
    root: Path,
    path: Path,
    doc_id: str,
    image_path: str,
    group: list[dict[str, str]],
    problems: list[Problem],
) -> Document:
    fields: dict[str, str] = {}
    questions: dict[str, str] = {}
    bboxes: dict[str, Any] = {}
    doc_class = group[0]["doc_class"]
    for row in group:
        line, name = int(row["_line"]), row["question_type"]
        if row["doc_class"] != doc_class:
            problems.append(
                Problem(
                    str(path),
                    line,
                    "doc_class",
                    f"image {image_path!r} is {doc_class!r} on an earlier row",
                )
            )
        if not name:
            problems.append(Problem(str(path), line, "question_type", "missing value"))
            continue
        if name in fields or name in questions:
            problems.append(Problem(str(path), line, "question_type", f"duplicate field {name!r}"))
            continue
        questions[name] = row["question"]
        bboxes[name] = _parse_bbox(row["answer_bbox"])
        if row["answer"].strip():
            fields[name] = row["answer"]
        else:
            problems.append(Problem(str(path), line, "answer", "missing value"))
    image, problem = resolve_image(root, image_path)
    meta = {
        "source": "vlmhyperbench-v0.1",
        "data_index": group[0]["data_index"],
        "split": group[0]["split"],
        "questions": questions,
        "bboxes": bboxes,
    }
    return Document(
        id=doc_id,
        images=(image,),
        doc_type=doc_class,
        fields=fields,
        tags=(group[0]["split"],) if group[0]["split"] else (),
        meta=meta,
        problems=(problem,) if problem else (),
        line=int(group[0]["_line"]),
    )


def _parse_bbox(raw: str) -> Any:
    """``"[1, 2, 3, 4]"`` → ``[1, 2, 3, 4]``; anything else is kept as the raw string."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, list) else raw


def read_prompt_csv(path: Path) -> list[V01Prompt]:
    """Rows of a v0.1 prompt collection CSV (``prompt;doc_class_question_type;cer``)."""
    from vlmhb.errors import PromptError

    rows = read_rows(path, PROMPT_COLUMNS, PromptError)
    return [
        V01Prompt(
            r["doc_class_question_type"].strip(), r["prompt"], r.get("cer", ""), int(r["_line"])
        )
        for r in rows
    ]


def read_vlm_base(path: Path) -> list[V01Model]:
    """Rows of v0.1 ``vlm_base.csv`` (the model registry of VLMHyperBench v0.1)."""
    rows = read_rows(Path(path), VLM_BASE_COLUMNS, PlanError)
    return [
        V01Model(
            **{c: r[c] for c in VLM_BASE_COLUMNS},
            git_python_package=r.get("git_python_package", ""),
        )
        for r in rows
    ]
