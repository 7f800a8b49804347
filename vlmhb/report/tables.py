"""The tables the report is drawn from: leaderboard, metric matrices, Pareto fronts, gaps.

Every function takes loaded runs (``RunData``) and returns a pandas frame or plain values; the
charts, the HTML page and the Markdown summary only format these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from vlmhb.report.run_data import RunData, gpu_columns, read_answers, read_references, record_value

QUALITY = {"exact_match": "exact_match", "anls": "anls", "cer": "cer_micro"}
LEADERBOARD_COLUMNS = [
    "run_id",
    "label",
    "model",
    "backend",
    "prompts",
    "mode",
    "status",
    "n_docs",
    "errors",
    "exact_match",
    "exact_match_lo",
    "exact_match_hi",
    "anls",
    "anls_lo",
    "anls_hi",
    "cer",
    "cer_lo",
    "cer_hi",
    "json_valid",
    "json_valid_lo",
    "json_valid_hi",
    "samples_per_s",
    "docs_per_s",
    "latency_p50_s",
    "latency_p95_s",
    "start_load_s",
    "generation_s",
    "teardown_s",
    "vram_peak_mb",
    "energy_per_doc_j",
]


def metric_value(table: pd.DataFrame | None, metric: str) -> tuple[float, float, float]:
    """(value, ci_low, ci_high) of ``metric`` in a long table without group keys; NaN if absent."""
    if table is None or "metric" not in table:
        return (math.nan,) * 3
    rows = table[table["metric"] == metric]
    if rows.empty:
        return (math.nan,) * 3
    row = rows.iloc[0]
    return tuple(float(row.get(c, math.nan)) for c in ("value", "ci_low", "ci_high"))  # type: ignore[return-value]


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return pd.Timestamp(value).timestamp()
        except ValueError:
            return math.nan
    return math.nan


def _counts(run: RunData) -> dict[str, Any]:
    counts = record_value(run.record, "counts")
    return counts if isinstance(counts, dict) else {}


def n_documents(run: RunData) -> float:
    """Documents in the run: counts in run.json, else lines of references.jsonl."""
    counts = _counts(run)
    for key in ("documents", "docs", "n_docs"):
        if _number(counts.get(key)) == _number(counts.get(key)):
            return _number(counts[key])
    refs = read_references(run.path)
    return float(len(refs)) if refs else math.nan


def _throughput_latency(run: RunData) -> tuple[float, float, float]:
    rate = _number(run.summary("samples_per_s"))
    p50 = _number(run.summary("latency_p50_s"))
    p95 = _number(run.summary("latency_p95_s"))
    if math.isnan(rate) or math.isnan(p50) or math.isnan(p95):
        answers = read_answers(run.path)
        if answers is not None and "latency_s" in answers and len(answers):
            lat = pd.to_numeric(answers["latency_s"], errors="coerce").dropna()
            if len(lat):
                p50 = p50 if not math.isnan(p50) else float(lat.quantile(0.5))
                p95 = p95 if not math.isnan(p95) else float(lat.quantile(0.95))
            if math.isnan(rate):
                start = _timestamp(record_value(run.record, "started_at", "start"))
                end = _timestamp(record_value(run.record, "finished_at", "ended_at", "end"))
                if end > start:
                    rate = len(answers) / (end - start)
    return rate, p50, p95


def _docs_per_s(run: RunData, samples_per_s: float, n_docs: float) -> float:
    """Documents per second, comparable across modes (a field-mode sample is one field)."""
    rate = _number(run.summary("docs_per_s"))
    if not math.isnan(rate):
        return rate
    if run.mode == "document":
        return samples_per_s
    samples = _number(_counts(run).get("samples"))
    return samples_per_s * n_docs / samples if samples and n_docs else math.nan


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Area under ``y(x)`` (numpy 2 renamed ``trapz`` to ``trapezoid``)."""
    integrate = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # noqa: B009
    return float(integrate(y, x))


def _vram_energy(run: RunData, n_docs: float) -> tuple[float, float]:
    vram = _number(run.summary("vram_peak_mb"))
    per_doc = _number(run.summary("energy_per_doc_j"))
    if math.isnan(per_doc):
        per_doc = _number(run.summary("energy_j")) / n_docs if n_docs else math.nan
    res = run.resources
    if res is not None and "t" in res:
        mem = gpu_columns(res, "mem_used_mb")
        if math.isnan(vram) and mem:
            vram = float(res[mem].sum(axis=1).max())
        power = gpu_columns(res, "power_w")
        if math.isnan(per_doc) and power and n_docs and len(res) > 1:
            t = res["t"].to_numpy(float)
            energy = float(_trapezoid(res[power].sum(axis=1).to_numpy(float), t))
            per_doc = energy / n_docs
    return vram, per_doc


def leaderboard(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per run: quality with 95 % CIs, JSON validity, speed, memory, energy.

    Sorted by exact match (best first; runs without metrics last). JSON validity is
    ``1 - json_parse_failure_rate``, only for document mode. CER is ``cer_micro``.
    """
    rows = []
    for run in runs:
        overall = run.tables.get("overall")
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "label": run.label,
            "model": run.model,
            "backend": run.backend,
            "prompts": run.prompts,
            "mode": run.mode,
            "status": run.status,
        }
        row["n_docs"] = n_documents(run)
        row["errors"] = _number(_counts(run).get("errors"))
        for name, metric in QUALITY.items():
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = metric_value(overall, metric)
        fail, fail_lo, fail_hi = metric_value(overall, "json_parse_failure_rate")
        row["json_valid"], row["json_valid_lo"], row["json_valid_hi"] = (
            (1 - fail, 1 - fail_hi, 1 - fail_lo) if run.mode == "document" else (math.nan,) * 3
        )
        row["samples_per_s"], row["latency_p50_s"], row["latency_p95_s"] = _throughput_latency(run)
        timings = record_value(run.record, "timings") or {}
        for column, key in (("start_load_s", "worker_start_s"), ("generation_s", "generation_s"),
                            ("teardown_s", "teardown_s")):  # fmt: skip
            row[column] = _number(timings.get(key))
        row["docs_per_s"] = _docs_per_s(run, row["samples_per_s"], row["n_docs"])
        row["vram_peak_mb"], row["energy_per_doc_j"] = _vram_energy(run, row["n_docs"])
        rows.append(row)
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    return table.sort_values(
        "exact_match", ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)


def metric_matrix(
    runs: Sequence[RunData], table: str, key: str, metric: str = "exact_match"
) -> pd.DataFrame:
    """Long-table ``metric`` per group (``key``) x run label: rows are groups, columns runs.

    Companion frames of CIs and n are in the ``attrs`` (``ci_low``, ``ci_high``, ``n``).
    """
    parts = []
    for run in runs:
        frame = run.tables.get(table)
        if frame is None or key not in frame or "metric" not in frame:
            continue
        sel = frame[frame["metric"] == metric]
        parts.append(sel.assign(run=run.label)[[key, "run", "value", "ci_low", "ci_high", "n"]])
    if not parts:
        return pd.DataFrame()
    long = pd.concat(parts, ignore_index=True)
    long[key] = long[key].astype(str)
    order = [r.label for r in runs if r.label in set(long["run"])]
    wide = {
        c: long.pivot_table(index=key, columns="run", values=c, aggfunc="first").reindex(
            columns=order
        )
        for c in ("value", "ci_low", "ci_high", "n")
    }
    out = wide["value"]
    out.attrs = {c: wide[c] for c in ("ci_low", "ci_high", "n")}
    return out


def pareto_front(
    x: Sequence[float], y: Sequence[float], *, maximize_x: bool = True, maximize_y: bool = True
) -> list[bool]:
    """Which points no other point dominates (at least as good on both axes, better on one).

    Points with a missing coordinate are never on the front.
    """
    sx = np.asarray(x, float) * (1 if maximize_x else -1)
    sy = np.asarray(y, float) * (1 if maximize_y else -1)
    ok = np.isfinite(sx) & np.isfinite(sy)
    front = []
    for i in range(len(sx)):
        if not ok[i]:
            front.append(False)
            continue
        dominated = ok & (sx >= sx[i]) & (sy >= sy[i]) & ((sx > sx[i]) | (sy > sy[i]))
        front.append(not bool(dominated.any()))
    return front


def report_gaps(runs: Sequence[RunData]) -> list[str]:
    """Every stated gap, as ``<run label> (<run id>): <gap>``."""
    return [f"{run.label} ({run.run_id}): {gap}" for run in runs for gap in run.gaps]


def resource_series(run: RunData, max_points: int = 400) -> pd.DataFrame | None:
    """A run's resource timeline, summed over GPUs, downsampled to at most ``max_points`` rows.

    Columns: ``t`` (seconds from the first sample), ``rss_mb``, ``cpu_pct`` and, where GPUs
    were measured, ``vram_mb``, ``sm_util`` (mean over GPUs), ``power_w``.
    """
    res = run.resources
    if res is None or "t" not in res or res.empty:
        return None
    t = pd.to_numeric(res["t"], errors="coerce")
    if pd.api.types.is_datetime64_any_dtype(res["t"]):
        t = (res["t"] - res["t"].min()).dt.total_seconds()
    out = pd.DataFrame({"t": t - t.min()})
    for col in ("rss_mb", "cpu_pct"):
        if col in res:
            out[col] = pd.to_numeric(res[col], errors="coerce")
    for name, suffix, how in [
        ("vram_mb", "mem_used_mb", "sum"),
        ("sm_util", "sm_util", "mean"),
        ("power_w", "power_w", "sum"),
    ]:
        cols = gpu_columns(res, suffix)
        if cols:
            out[name] = getattr(res[cols], how)(axis=1)
    if len(out) > max_points:
        bins = pd.cut(out["t"], max_points, labels=False)
        out = out.groupby(bins).max().reset_index(drop=True)
    return out
