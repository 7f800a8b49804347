"""Read a run folder (``run.json``, ``references.jsonl``, ``answers.jsonl``) and join them.

Answers are joined to references on ids (``doc_id`` + ``field``), never on row order; the first
line for an id wins (a resumed run may repeat one). A reference without an answer line is
scored as an empty answer and flagged ``missing``; a failed sample (``error`` set) is scored as
an empty answer too and keeps its error text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmhb.metrics._errors import MetricsInputError
from vlmhb.run.files import ANSWERS, REFERENCES, RUN_JSON

MODES = ("field", "document", "text")


@dataclass(frozen=True)
class Answer:
    """One answer line, reduced to what scoring needs."""

    text: str
    error: str | None


@dataclass
class RunInputs:
    """Everything read from a run folder."""

    mode: str
    plan_metrics: list[str]
    references: list[dict[str, Any]]
    answers: dict[tuple[str, str | None], Answer]
    duplicate_answers: int = 0
    unmatched_answers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise MetricsInputError("file not found", file=str(path))
    rows = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise MetricsInputError(f"not JSON: {error.msg}", str(path), number) from None
            if not isinstance(row, dict):
                raise MetricsInputError("a line must be a JSON object", str(path), number)
            rows.append((number, row))
    return rows


def _read_references(path: Path) -> list[dict[str, Any]]:
    references = []
    seen: set[str] = set()
    for number, row in _read_jsonl(path):
        doc_id = row.get("doc_id")
        fields = row.get("fields") or {}
        if not isinstance(doc_id, str) or not doc_id:
            raise MetricsInputError("missing 'doc_id'", str(path), number)
        if not isinstance(fields, dict):
            raise MetricsInputError("'fields' must be an object", str(path), number)
        if doc_id in seen:
            raise MetricsInputError(f"duplicate doc_id {doc_id!r}", str(path), number)
        seen.add(doc_id)
        declared = row.get("field_types") or {}
        if not isinstance(declared, dict):
            raise MetricsInputError("'field_types' must be an object", str(path), number)
        references.append(
            {
                "field_types": {str(k): str(v) for k, v in declared.items() if v},
                "doc_id": doc_id,
                "doc_type": str(row.get("doc_type") or ""),
                "fields": {str(k): "" if v is None else str(v) for k, v in fields.items()},
                "text": row.get("text"),
                "tags": [str(tag) for tag in row.get("tags") or []],
            }
        )
    return references


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_JSON
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise MetricsInputError(f"not JSON: {error.msg}", str(path), error.lineno) from None
    if not isinstance(data, dict):
        raise MetricsInputError("must hold a JSON object", str(path))
    return data


def _plan_metrics(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [name for name in value.replace(";", ",").split(",") if name.strip()]
    return [str(name) for name in value]


def read_run(run_dir: Path, mode: str | None = None) -> RunInputs:
    """Read and join a run folder; raises :class:`MetricsInputError` on bad input."""
    if not run_dir.is_dir():
        raise MetricsInputError("run folder not found", file=str(run_dir))
    run = _read_run_json(run_dir)
    references = _read_references(run_dir / REFERENCES)
    answer_rows = _read_jsonl(run_dir / ANSWERS)
    mode = mode or run.get("mode") or next((r.get("mode") for _, r in answer_rows), None)
    mode = mode or "field"
    if mode not in MODES:
        raise MetricsInputError(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})")
    inputs = RunInputs(mode, _plan_metrics(run.get("metrics")), references, {})
    known = {
        (ref["doc_id"], name if mode == "field" else None)
        for ref in references
        for name in (ref["fields"] if mode == "field" else [None])
    }
    for number, row in answer_rows:
        doc_id = row.get("doc_id")
        if not isinstance(doc_id, str):
            raise MetricsInputError("missing 'doc_id'", str(run_dir / ANSWERS), number)
        name = row.get("field")
        sample_id = str(row.get("id") or "")
        if mode == "field" and name is None and sample_id.startswith(f"{doc_id}:"):
            name = sample_id[len(doc_id) + 1 :]  # older lines: the field only in the id
        key = (doc_id, name if mode == "field" else None)
        if key in inputs.answers:
            inputs.duplicate_answers += 1
            continue
        if key not in known:
            inputs.unmatched_answers += 1
            continue
        error = row.get("error")
        answer = row.get("answer")
        text = "" if error or answer is None else str(answer)
        inputs.answers[key] = Answer(text, None if error is None else str(error))
    return inputs
