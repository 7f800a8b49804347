"""The native dataset format: a folder with images and ``annotations.jsonl``, one document a line.

Reading is lenient and exact about what it could not use: a bad line becomes a located
``Problem`` on the dataset, a missing or unreadable image a problem on its document.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from vlmhb.data.digests import file_digest
from vlmhb.data.documents import ContentHash, Dataset, Document, DocumentList, record_of
from vlmhb.data.images import inspect_image, real_root
from vlmhb.errors import DatasetError, Problem
from vlmhb.validity import unknown_types

ANNOTATIONS = "annotations.jsonl"


def _id_as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class AnnotationLine(TypedDict):
    """One line of ``annotations.jsonl`` (the schema the reader validates)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    id: Annotated[str, StringConstraints(min_length=1), BeforeValidator(_id_as_text)]
    image: str | list[str]
    doc_type: Annotated[str, StringConstraints(min_length=1)]
    fields: NotRequired[dict[str, str | int | float | None]]
    text: NotRequired[str | None]
    tags: NotRequired[list[str]]
    meta: NotRequired[dict[str, Any]]
    field_types: NotRequired[dict[str, str]]  # vlmhb.validity types


@functools.cache
def _validator() -> TypeAdapter[AnnotationLine]:
    # A TypedDict validates a line in about half the time of a model (no instance is built).
    return TypeAdapter(AnnotationLine)


def read_native(root: Path) -> Dataset:
    """Read a native dataset folder; ``DatasetError`` only if the file cannot be read at all.

    Each image is checked as its line is read, and the dataset's content hash is computed
    from the same bytes (``Dataset.known_hash``).
    """
    root = root.resolve()
    path = root / ANNOTATIONS
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as exc:
        raise DatasetError([Problem(str(path), None, None, "annotation file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([Problem(str(path), None, None, f"cannot read: {exc}")]) from exc
    reader = _Reader(root, str(path))
    validate = _validator().validate_json
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = validate(raw)
        except ValidationError as exc:
            reader.problems.extend(_validation_problems((str(path), number), exc))
            continue
        reader.add(record, number)
    lines.clear()
    return Dataset(
        root,
        root.name,
        reader.documents,
        reader.problems,
        annotation_file=path,
        known_hash=reader.content.hexdigest(),
    )


class _Reader:
    """Turns validated lines into documents, their problems and the content hash."""

    def __init__(self, root: Path, annotation_file: str) -> None:
        self.root = root
        self.base = real_root(root)
        self.prefix = self.base.rstrip("/") + "/"
        self.file = annotation_file
        self.documents = DocumentList()
        self.problems: list[Problem] = []
        self.content = ContentHash(root)
        self.seen: dict[str, int] = {}

    def add(self, record: AnnotationLine, line: int) -> None:
        doc_id = record["id"]
        first = self.seen.setdefault(doc_id, line)
        if first != line:
            self.problems.append(
                Problem(self.file, line, "id", f"duplicate id {doc_id!r} (first on line {first})")
            )
            return
        fields, missing = _clean_fields(record.get("fields") or {})
        field_types = record.get("field_types") or {}
        if missing or field_types:
            self._field_problems(line, missing, field_types)
        meta = record.get("meta") or {}
        if field_types:
            meta = {**meta, "field_types": field_types}
        rels = record["image"]
        checks = [
            inspect_image(self.base, rel) for rel in ([rels] if isinstance(rels, str) else rels)
        ]
        problems = tuple(check.problem for check in checks if check.problem)
        if not checks:
            problems = ("no image",)
        images = tuple(check.path for check in checks)
        text, tags = record.get("text"), tuple(record.get("tags") or ())
        self.documents.append_values(
            doc_id, images, record["doc_type"], fields, text, tags, meta, problems, line
        )
        if self.content.inside(images):
            # an image not read (missing, or named by an absolute path): as the recomputation
            digests = [c.digest.hex() if c.digest else file_digest(c.path) for c in checks]
            rel = [image[len(self.prefix) :] for image in images]
            self.content.add_record(
                record_of(doc_id, rel, record["doc_type"], fields, text, tags, meta), digests
            )
        else:  # a path outside the folder: hashed as its Document, the path never read
            self.content.add(self.documents[-1], ["outside" for _ in images])

    def _field_problems(self, line: int, missing: list[str], types: dict[str, str]) -> None:
        self.problems.extend(
            Problem(self.file, line, f"fields.{n}", "missing value") for n in missing
        )
        self.problems.extend(
            Problem(self.file, line, f"field_types.{name}", f"unknown field type {kind!r}")
            for name, kind in types.items()
            if unknown_types({name: kind})
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
