"""Per-document drill-down data: which documents to show, each field's truth, answers and diffs.

The page renders it client-side from one compact JSON object, a page of documents at a time:

``{"runs": [label], "docs": [{"id", "type", "tags", "img", "src", "pages", "errors",
"fields": [{"name", "ref", "cells": [[run, ok, diff, error, ref_override]]}]}],
"images": {img_id: data_url}, "shown": n, "total": n}``

A cell's ``diff`` is null when the answer equals the reference; otherwise a list of
``"=text"`` / ``"-text"`` (only in the reference) / ``"+text"`` (only in the answer) pieces from
``difflib``. Trailing nulls of a cell are dropped. Documents with the most wrong answers across
runs come first; at most ``max_docs`` documents and about ``max_cells`` cells are kept.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vlmhb.report.run_data import RunData, read_references, read_samples
from vlmhb.report.thumbs import ThumbnailStore, contained_image

MAX_CELLS = 400_000


@dataclass
class DrillDown:
    """The drill-down payload and how much of the campaign it covers."""

    data: dict[str, Any]
    shown: int
    total: int
    note: str | None


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows as dicts, column by column through ``tolist`` (``to_dict`` is slow on Arrow
    strings)."""
    names = list(frame.columns)
    for values in zip(*(frame[c].tolist() for c in names), strict=True):
        yield dict(zip(names, values, strict=True))


@functools.lru_cache(maxsize=65_536)  # the same wrong reading recurs across runs
def char_diff(reference: str, answer: str) -> tuple[str, ...] | None:
    """Character diff pieces (``=``, ``-``, ``+`` prefixed); None when the strings are equal."""
    if reference == answer:
        return None
    pieces: list[str] = []
    matcher = difflib.SequenceMatcher(None, reference, answer, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append("=" + reference[i1:i2])
            continue
        if i2 > i1:
            pieces.append("-" + reference[i1:i2])
        if j2 > j1:
            pieces.append("+" + answer[j1:j2])
    return tuple(pieces)


def _is_wrong(row: dict[str, Any]) -> bool:
    err = row.get("error")
    has_error = isinstance(err, str) and bool(err)
    exact = row.get("exact")
    return has_error or not (exact is True or exact == 1 or exact == 1.0)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def select_documents(
    runs: Sequence[RunData], max_docs: int, max_cells: int = MAX_CELLS
) -> tuple[list[str], int]:
    """Document ids to show (most wrong answers across runs first) and the total count."""
    wrong: Counter[str] = Counter()
    fields_per_doc: Counter[str] = Counter()
    order: dict[str, int] = {}
    with_samples = 0
    for run in runs:
        samples = read_samples(run, ["doc_id", "exact", "error"])
        if samples is None or samples.empty:
            continue
        with_samples += 1
        for doc_id, n in samples["doc_id"].astype(str).value_counts(sort=False).items():
            order.setdefault(doc_id, len(order))
            fields_per_doc[doc_id] = max(fields_per_doc[doc_id], int(n))
        exact = samples["exact"].fillna(False).astype(bool) if "exact" in samples else False
        err = (
            samples["error"].notna() & (samples["error"].astype(str) != "")
            if "error" in samples
            else False
        )
        bad = samples.loc[~exact | err, "doc_id"].astype(str)
        wrong.update(bad.tolist())
    ranked = sorted(order, key=lambda d: (-wrong[d], order[d]))
    chosen: list[str] = []
    cells = 0
    for doc_id in ranked[:max_docs]:
        cells += fields_per_doc[doc_id] * with_samples
        if chosen and cells > max_cells:
            break
        chosen.append(doc_id)
    return chosen, len(order)


def build_drilldown(
    runs: Sequence[RunData], max_docs: int = 5000, max_cells: int = MAX_CELLS
) -> DrillDown:
    """Read each run's samples for the chosen documents and assemble the payload."""
    chosen, total = select_documents(runs, max_docs, max_cells)
    keep = set(chosen)
    docs: dict[str, dict[str, Any]] = {d: {"id": d, "fields": {}, "errors": 0} for d in chosen}
    for k, run in enumerate(runs):
        samples = read_samples(run)
        if samples is None or samples.empty:
            continue
        samples = samples[samples["doc_id"].astype(str).isin(keep)]
        for row in _records(samples):
            doc = docs[str(row["doc_id"])]
            doc.setdefault("type", _text(row.get("doc_type")))
            doc.setdefault("tags", [t for t in _text(row.get("tags")).split(";") if t])
            name = _text(row.get("field")) or "text"
            ref, ans = _text(row.get("reference")), _text(row.get("answer"))
            entry = doc["fields"].setdefault(name, {"name": name, "ref": ref, "cells": []})
            wrong = _is_wrong(row)
            doc["errors"] += int(wrong)
            err = _text(row.get("error")) or None
            cell: list[Any] = [
                k,
                0 if wrong else 1,
                char_diff(ref, ans),
                err,
                ref if ref != entry["ref"] else None,
            ]
            while cell[-1] is None:
                cell.pop()
            entry["cells"].append(cell)
    thumbs = _attach_images(runs, docs)
    out_docs = []
    for d in chosen:
        doc = docs[d]
        doc["fields"] = list(doc["fields"].values())
        out_docs.append(doc)
    note = None
    if len(chosen) < total:
        note = (
            f"drill-down shows {len(chosen)} of {total} documents, those with the most "
            f"wrong answers first"
        )
    data = {
        "runs": [r.label for r in runs],
        "docs": out_docs,
        "images": thumbs.urls,
        "shown": len(chosen),
        "total": total,
    }
    return DrillDown(data=data, shown=len(chosen), total=total, note=note)


def _attach_images(runs: Sequence[RunData], docs: dict[str, dict[str, Any]]) -> ThumbnailStore:
    """Set ``img`` (thumbnail id), ``src`` (original file) and ``pages`` on each document."""
    store = ThumbnailStore()
    pending = set(docs)
    for run in runs:
        if not pending:
            break
        refs = read_references(run.path)
        for doc_id in list(pending):
            ref = refs.get(doc_id)
            if ref is None:
                continue
            pending.discard(doc_id)
            images = ref.get("images") or []
            images = [images] if isinstance(images, str) else list(images)
            doc = docs[doc_id]
            doc.setdefault("type", _text(ref.get("doc_type")))
            doc.setdefault("tags", list(ref.get("tags") or []))
            first = contained_image(str(images[0]), run.record.get("dataset")) if images else None
            if first is not None:
                doc["img"] = store.add(first)
                doc["src"] = _file_uri(str(first))
            if images:
                doc["pages"] = len(images)
    return store


def _file_uri(path: str) -> str | None:
    from pathlib import Path

    try:
        return Path(path).resolve().as_uri()
    except ValueError:
        return None
