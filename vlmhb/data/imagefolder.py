"""Hugging Face ``imagefolder`` datasets: images with a ``metadata.jsonl`` beside them.

Each line names its image in ``file_name``. Ground truth comes from ``fields`` (a mapping),
or from a Donut-style ``ground_truth`` JSON string (``{"gt_parse": {...}}``); ``text``,
``doc_type``, ``id`` and ``tags`` are read when present; every other column goes to ``meta``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmhb.data.documents import Dataset, Document, DocumentList
from vlmhb.data.images import resolve_image
from vlmhb.errors import DatasetError, Problem

METADATA = "metadata.jsonl"
_KNOWN = {"file_name", "id", "doc_type", "fields", "ground_truth", "text", "tags"}


def read_imagefolder(root: Path) -> Dataset:
    """Read an imagefolder dataset; bad lines become located problems on the dataset."""
    root = root.resolve()
    path = root / METADATA
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([Problem(str(path), None, None, f"cannot read: {exc}")]) from exc
    documents = DocumentList()
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), number, None, f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("file_name"), str):
            problems.append(Problem(str(path), number, "file_name", "missing or not a string"))
            continue
        fields, error = _fields(record)
        if error:
            problems.append(Problem(str(path), number, "fields", error))
        doc_id = str(record.get("id") or Path(record["file_name"]).stem)
        if doc_id in seen:
            problems.append(Problem(str(path), number, "id", f"duplicate id {doc_id!r}"))
            continue
        seen.add(doc_id)
        image, problem = resolve_image(root, record["file_name"])
        tags = record.get("tags") or []
        documents.append(
            Document(
                id=doc_id,
                images=(image,),
                doc_type=str(record.get("doc_type") or "document"),
                fields=fields,
                text=record.get("text") if isinstance(record.get("text"), str) else None,
                tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (str(tags),),
                meta={k: v for k, v in record.items() if k not in _KNOWN},
                problems=(problem,) if problem else (),
                line=number,
            )
        )
    return Dataset(root, root.name, documents, problems, annotation_file=path)


def _fields(record: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """Scalar ground-truth fields of one line, and a message if they could not be read."""
    raw: Any = record.get("fields")
    if raw is None and "ground_truth" in record:
        try:
            truth = record["ground_truth"]
            truth = json.loads(truth) if isinstance(truth, str) else truth
            raw = truth.get("gt_parse", truth) if isinstance(truth, dict) else None
        except json.JSONDecodeError as exc:
            return {}, f"ground_truth is not valid JSON: {exc.msg}"
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        return {}, "not a mapping"
    fields = {
        str(k): str(v)
        for k, v in raw.items()
        if isinstance(v, str | int | float) and str(v).strip()
    }
    skipped = sorted(set(map(str, raw)) - set(fields))
    return fields, (f"no scalar value for {', '.join(skipped)}" if skipped else None)
