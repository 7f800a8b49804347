"""Read run folders (docs/architecture.md) into ``RunData``: the record, the metric tables, the
resource time series, and the gaps each run has. Lenient: any key or file may be missing.

Per-sample tables are not held for every run (50 runs x 5,000 documents would not fit); the
drill-down reads them run by run through ``read_samples``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlmhb.errors import RunDirError
from vlmhb.run.files import (
    ANSWERS,
    BY_DOC_TYPE,
    BY_FIELD,
    BY_SAMPLE,
    BY_TAG,
    OVERALL,
    REFERENCES,
    RESOURCES,
    RUN_JSON,
    metrics_table,
)
from vlmhb.run.folder import iter_jsonl
from vlmhb.run.metric_directions import read_directions

AGGREGATES = (OVERALL, BY_FIELD, BY_DOC_TYPE, BY_TAG)
SAMPLE_COLUMNS = [
    "sample_id",
    "doc_id",
    "doc_type",
    "field",
    "tags",
    "reference",
    "answer",
    "error",
    "exact",
    "anls",
    "cer",
    "json_ok",
]
PLAN_KEYS = ("plan", "plan_row", "row")


@dataclass
class RunData:
    """What the report knows about one run folder."""

    path: Path
    record: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    resources: pd.DataFrame | None = None
    gaps: list[str] = field(default_factory=list)
    suffix: str = ""  # set by load_runs when two runs would otherwise share a label
    # metric -> higher is better, as metrics/metrics.json records it
    directions: dict[str, bool] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """The run id from run.json, else the folder name."""
        return str(self.record.get("run_id") or self.path.name)

    @property
    def model(self) -> str:
        """Model id or path."""
        return _label(record_value(self.record, "model"), "?")

    @property
    def backend(self) -> str:
        """Backend name."""
        return _label(record_value(self.record, "backend"), "?")

    @property
    def prompts(self) -> str:
        """Prompt collection, shortened to its file stem."""
        value = record_value(self.record, "prompts", "prompt_collection")
        text = _label(value, "default")
        return Path(text).stem if ("/" in text or text.endswith((".csv", ".json"))) else text

    @property
    def mode(self) -> str:
        """``field``, ``document`` or ``text``."""
        return _label(record_value(self.record, "mode"), "field")

    @property
    def status(self) -> str:
        """Run status from run.json."""
        return _label(record_value(self.record, "status"), "unknown")

    @property
    def label(self) -> str:
        """Display label: the plan's run name, else model · backend · prompts (· mode)."""
        name = record_value(self.record, "name")
        if name:
            return f"{name}{self.suffix}"
        parts = [self.model.split("/")[-1], self.backend, self.prompts]
        if self.mode != "field":
            parts.append(self.mode)
        return " · ".join(parts) + self.suffix

    @property
    def has_metrics(self) -> bool:
        """Whether the metrics stage left an overall table."""
        return "overall" in self.tables

    def summary(self, key: str) -> Any:
        """A value of run.json's resource summary, or None."""
        res = record_value(self.record, "resources", "resource_summary")
        return res.get(key) if isinstance(res, dict) else None


def _label(value: Any, default: str) -> str:
    if isinstance(value, dict):
        value = value.get("name") or value.get("id") or value.get("path")
    return default if value in (None, "") else str(value)


def record_value(record: dict[str, Any], *keys: str) -> Any:
    """First of ``keys`` found at the top of run.json or inside its plan row."""
    for key in keys:
        if record.get(key) not in (None, ""):
            return record[key]
    for holder in PLAN_KEYS:
        inner = record.get(holder)
        if isinstance(inner, dict):
            for key in keys:
                if inner.get(key) not in (None, ""):
                    return inner[key]
    return None


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders named by ``paths``: a folder with run.json, or any folder below holding one."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if (path / RUN_JSON).is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.rglob(RUN_JSON)))
        else:
            raise RunDirError(f"{path}: no such run folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise RunDirError(
            f"no run folder (a folder holding run.json) under: {', '.join(str(p) for p in paths)}"
        )
    return unique


def load_run(path: Path) -> RunData:
    """Read one run folder; every missing or unreadable part becomes a stated gap."""
    gaps: list[str] = []
    try:
        record = json.loads((path / RUN_JSON).read_text("utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        record = {}
        gaps.append(f"run.json unreadable ({exc})")
    run = RunData(path=path, record=record, gaps=gaps, directions=read_directions(path))
    if run.status not in ("done", "completed", "ok", "finished", "unknown"):
        gaps.append(f"status is {run.status!r}")
    for name in AGGREGATES:
        table = _read_table(path / metrics_table(name), gaps)
        if table is not None:
            run.tables[name] = table
    if not (path / metrics_table(OVERALL)).is_file():
        gaps.append("no metrics (metrics/overall.parquet missing): quality columns empty")
    res_file = path / RESOURCES
    if res_file.is_file():
        run.resources = _read_table(res_file, gaps)
        if run.resources is not None and not gpu_columns(run.resources, "mem_used_mb"):
            status = run.summary("gpu_status")
            why = f" (GPU: {status})" if isinstance(status, str) and status.lower() != "ok" else ""
            gaps.append(
                f"CPU only: no GPU readings in resources.parquet, so no VRAM, power or energy{why}"
            )
    else:
        gaps.append("no resources.parquet: no resource timeline")
        status = run.summary("gpu_status")
        if isinstance(status, str) and status.lower() != "ok":
            gaps.append(f"GPU: {status}")
    run.gaps = gaps
    return run


def _read_table(path: Path, gaps: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        gaps.append(f"{path.parent.name}/{path.name} unreadable ({exc})")
        return None


def gpu_columns(resources: pd.DataFrame, suffix: str) -> list[str]:
    """Columns ``gpu{i}_<suffix>`` of a resource table holding at least one reading."""
    return [
        c
        for c in resources.columns
        if str(c).startswith("gpu") and str(c).endswith("_" + suffix) and resources[c].notna().any()
    ]


def load_runs(paths: list[Path]) -> list[RunData]:
    """Find and read every run under ``paths``, in a stable order (model, backend, prompts)."""
    runs = [load_run(p) for p in find_runs(paths)]
    runs.sort(key=lambda r: (r.model, r.backend, r.prompts, r.mode, r.run_id))
    labels = Counter(run.label for run in runs)
    for run in runs:
        if labels[run.label] > 1:  # e.g. one model at two dtypes: tell the runs apart
            run.suffix = f" ({run.run_id[-6:]})"
    return runs


def read_answers(path: Path) -> pd.DataFrame | None:
    """answers.jsonl as a table (first line per id wins), or None when absent."""
    file = path / ANSWERS
    if not file.is_file():
        return None
    rows = list(iter_jsonl(file))  # a torn last line of an interrupted run is skipped
    if not rows:
        return pd.DataFrame(columns=["id", "answer", "error", "latency_s"])
    return pd.DataFrame(rows).drop_duplicates("id", keep="first")


def read_references(path: Path) -> dict[str, dict[str, Any]]:
    """references.jsonl keyed by doc_id (empty when absent)."""
    file = path / REFERENCES
    return {str(doc.get("doc_id")): doc for doc in iter_jsonl(file)}


def read_samples(run: RunData, columns: list[str] | None = None) -> pd.DataFrame | None:
    """Per-sample rows: metrics/by_sample.parquet, else rebuilt from references + answers.

    The rebuilt rows (a run without metrics) compare raw strings only: ``exact`` is strict
    equality after trimming, and ``anls``/``cer`` are left empty.
    """
    file = run.path / metrics_table(BY_SAMPLE)
    if file.is_file():
        import pyarrow.parquet as pq

        present = set(pq.read_schema(file).names)
        wanted = [c for c in (columns or SAMPLE_COLUMNS) if c in present]
        return pd.read_parquet(file, columns=wanted)
    answers = read_answers(run.path)
    refs = read_references(run.path)
    if answers is None or not refs:
        return None
    return _samples_from_answers(answers, refs, run.mode)


def _samples_from_answers(
    answers: pd.DataFrame, refs: dict[str, dict[str, Any]], mode: str
) -> pd.DataFrame:
    by_id = {str(a["id"]): a for a in answers.to_dict("records")}
    rows = []
    for doc_id, doc in refs.items():
        fields = dict(doc.get("fields") or {}) if mode != "text" else {"text": doc.get("text")}
        parsed: dict[str, Any] | None = None
        if mode in ("document", "text"):
            line = by_id.get(doc_id, {})
            if mode == "document":
                try:
                    parsed = json.loads(line.get("answer") or "")
                except ValueError:
                    parsed = None
        for name, ref in fields.items():
            line = by_id.get(f"{doc_id}:{name}" if mode == "field" else doc_id, {})
            if mode == "document":
                answer = parsed.get(name, "") if isinstance(parsed, dict) else ""
            else:
                answer = line.get("answer") or ""
            ref_text = "" if ref is None else str(ref)
            error = line.get("error") if line else "no answer"
            if isinstance(error, float) and math.isnan(error):
                error = None
            rows.append(
                {
                    "sample_id": f"{doc_id}:{name}",
                    "doc_id": doc_id,
                    "doc_type": doc.get("doc_type", ""),
                    "field": name,
                    "tags": ";".join(doc.get("tags") or []),
                    "reference": ref_text,
                    "answer": str(answer),
                    "error": error,
                    "exact": str(answer).strip() == ref_text.strip(),
                    "anls": float("nan"),
                    "cer": float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS[:-1])
