"""The native dataset format: a folder with images and ``annotations.jsonl``, one document a line.

Reading is lenient and exact about what it could not use: a bad line becomes a located
``Problem`` on the dataset, a missing or unreadable image a problem on its document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlmhb.data.documents import Dataset, Document, DocumentList
from vlmhb.data.images import resolve_image
from vlmhb.errors import DatasetError, Problem
from vlmhb.validity import unknown_types

ANNOTATIONS = "annotations.jsonl"


class AnnotationLine(BaseModel):
    """One line of ``annotations.jsonl`` (the schema the reader validates)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    image: str | list[str]
    doc_type: str = Field(min_length=1)
    fields: dict[str, str | int | float | None] = Field(default_factory=dict)
    text: str | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    field_types: dict[str, str] = Field(default_factory=dict)  # vlmhb.validity types

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def read_native(root: Path) -> Dataset:
    """Read a native dataset folder; ``DatasetError`` only if the file cannot be read at all."""
    root = root.resolve()
    path = root / ANNOTATIONS
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as exc:
        raise DatasetError([Problem(str(path), None, None, "annotation file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([Problem(str(path), None, None, f"cannot read: {exc}")]) from exc
    documents = DocumentList()
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = (str(path), number)
        try:
            record = AnnotationLine.model_validate_json(raw)
        except ValidationError as exc:
            problems.extend(_validation_problems(where, exc))
            continue
        if record.id in seen:
            problems.append(
                Problem(
                    *where, "id", f"duplicate id {record.id!r} (first on line {seen[record.id]})"
                )
            )
            continue
        seen[record.id] = number
        fields, missing = _clean_fields(record.fields)
        problems.extend(Problem(*where, f"fields.{name}", "missing value") for name in missing)
        problems.extend(
            Problem(*where, f"field_types.{name}", f"unknown field type {kind!r}")
            for name, kind in record.field_types.items()
            if unknown_types({name: kind})
        )
        documents.append(_document(root, record, fields, number))
    return Dataset(root, root.name, documents, problems, annotation_file=path)


def _document(root: Path, record: AnnotationLine, fields: dict[str, str], line: int) -> Document:
    rels = [record.image] if isinstance(record.image, str) else record.image
    images: list[Path] = []
    doc_problems: list[str] = []
    if not rels:
        doc_problems.append("no image")
    for rel in rels:
        image, problem = resolve_image(root, rel)
        images.append(image)
        if problem:
            doc_problems.append(problem)
    return Document(
        id=record.id,
        images=tuple(images),
        doc_type=record.doc_type,
        fields=fields,
        text=record.text,
        tags=tuple(record.tags),
        meta={**record.meta, "field_types": record.field_types}
        if record.field_types
        else record.meta,
        problems=tuple(doc_problems),
        line=line,
    )


def _clean_fields(raw: dict[str, str | int | float | None]) -> tuple[dict[str, str], list[str]]:
    """Field values as text; names of fields with no value (null or blank) are returned apart."""
    fields: dict[str, str] = {}
    missing: list[str] = []
    for name, value in raw.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(name)
        else:
            fields[name] = value if isinstance(value, str) else str(value)
    return fields, missing


def _validation_problems(where: tuple[str, int], exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            problems.append(
                Problem(*where, None, f"not valid JSON: {error['ctx'].get('error', '')}")
            )
            continue
        key = ".".join(str(part) for part in error["loc"]) or None
        problems.append(Problem(*where, key, error["msg"]))
    return problems


def write_native(root: Path, documents: list[Document]) -> Path:
    """Write ``annotations.jsonl`` for ``documents`` whose images already lie under ``root``."""
    path = root / ANNOTATIONS
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for doc in documents:
            handle.write(json.dumps(doc.to_record(root), ensure_ascii=False) + "\n")
    return path
