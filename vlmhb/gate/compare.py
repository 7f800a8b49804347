"""Compare two scored runs sample by sample: per-field deltas with paired bootstrap CIs.

Both runs' ``metrics/by_sample.parquet`` are joined on ``(doc_id, field)``, so only samples
scored in both count (a new model container or prompt collection against a baseline, on
the same dataset). For each field and for all fields together, the delta is
``mean(B) - mean(A)`` of a per-sample metric (``exact``, ``anls``, ``cer``, ...: the macro
average). Its 95 % CI comes from a paired bootstrap clustered by document: documents are
drawn with replacement (multinomial weights, seeded), each draw carries its samples' paired
differences. A change is flagged when the whole CI lies on one side of zero and the delta
exceeds ``min_delta``: a *regression* when B is worse (lower for exact/anls, higher for
cer/wer/ned: the direction run B's ``metrics.json`` records), an *improvement* otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmhb.errors import VlmhbError
from vlmhb.run.files import BY_SAMPLE, RUN_JSON, metrics_table
from vlmhb.run.metric_directions import higher_is_better, read_directions

ALL_FIELDS = "(all)"
# Columns added after a run may have been scored: absent ones compare as nothing (no rows).
LATER_COLUMNS = frozenset({"valid_but_wrong", "invalid"})
KEY = ["doc_id", "field"]


class CompareError(VlmhbError):
    """Two runs that cannot be compared (not scored, nothing in common, unknown metric)."""


@dataclass(frozen=True)
class Delta:
    """One field and metric: both means, the paired delta B - A and its CI."""

    field: str
    metric: str
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    n_pairs: int
    n_docs: int
    verdict: str  # regression | improvement | "" (within the noise)


@dataclass(frozen=True)
class Comparison:
    """Every delta of two runs, and what did not pair up."""

    run_a: Path
    run_b: Path
    deltas: tuple[Delta, ...]
    only_a: int
    only_b: int
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> list[Delta]:
        """Deltas where B is worse than A beyond the noise."""
        return [d for d in self.deltas if d.verdict == "regression"]


def _load(run_dir: Path, metrics: Sequence[str]) -> Any:
    import pandas as pd

    path = run_dir / metrics_table(BY_SAMPLE)
    if not path.exists():
        raise CompareError(f"{run_dir}: no metrics/by_sample.parquet; score it with vlmhb eval")
    frame = pd.read_parquet(path)
    frame = frame.assign(
        **{m: float("nan") for m in LATER_COLUMNS & set(metrics) if m not in frame.columns}
    )
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise CompareError(f"{run_dir}: by_sample has no column {', '.join(missing)}")
    frame = frame[[*KEY, *metrics]].copy()
    frame["field"] = frame["field"].fillna("").astype(str)
    frame["doc_id"] = frame["doc_id"].astype(str)
    return frame.drop_duplicates(KEY)


def bootstrap_delta(
    doc_ids: Any, diffs: Any, *, n_boot: int, rng: Any
) -> tuple[float, float, float]:
    """Mean paired difference and its 95 % CI, resampling documents (clusters)."""
    import numpy as np
    import pandas as pd

    grouped = pd.DataFrame({"doc": doc_ids, "d": diffs}).groupby("doc", sort=True)["d"]
    sums = grouped.sum().to_numpy(dtype=float)
    counts = grouped.count().to_numpy(dtype=float)
    delta = float(sums.sum() / counts.sum())
    n_docs = len(sums)
    weights = rng.multinomial(n_docs, np.full(n_docs, 1.0 / n_docs), size=n_boot)
    boot = (weights @ sums) / np.maximum(weights @ counts, 1e-12)
    low, high = np.percentile(boot, [2.5, 97.5])
    return delta, float(low), float(high)


def _verdict(worse_when_up: bool, delta: float, low: float, high: float, min_delta: float) -> str:
    if low > 0 and abs(delta) > min_delta:
        return "regression" if worse_when_up else "improvement"
    if high < 0 and abs(delta) > min_delta:
        return "improvement" if worse_when_up else "regression"
    return ""


def compare_runs(
    run_a: Path,
    run_b: Path,
    *,
    metrics: Sequence[str] = ("exact", "anls", "cer"),
    n_boot: int = 2000,
    seed: int = 0,
    min_delta: float = 0.0,
) -> Comparison:
    """Per-field (and overall) deltas of ``metrics`` from run A to run B."""
    import numpy as np

    a, b = _load(run_a, metrics), _load(run_b, metrics)
    merged = a.merge(b, on=KEY, how="inner", suffixes=("_a", "_b"))
    if merged.empty:
        raise CompareError(f"{run_a} and {run_b} have no (doc_id, field) sample in common")
    rng = np.random.default_rng(seed)
    directions = read_directions(run_b)
    unknown = [m for m in metrics if higher_is_better(m, directions) is None]
    if unknown:
        raise CompareError(f"{run_b}: no direction recorded for {', '.join(unknown)}")
    deltas: list[Delta] = []
    groups = [(ALL_FIELDS, merged), *((f, g) for f, g in merged.groupby("field", sort=True))]
    for name, group in groups:
        for metric in metrics:
            pairs = group[[f"{metric}_a", f"{metric}_b", "doc_id"]].dropna()
            if pairs.empty:
                continue
            diffs = pairs[f"{metric}_b"].to_numpy(float) - pairs[f"{metric}_a"].to_numpy(float)
            delta, low, high = bootstrap_delta(
                pairs["doc_id"].to_numpy(), diffs, n_boot=n_boot, rng=rng
            )
            deltas.append(
                Delta(
                    field=str(name),
                    metric=metric,
                    mean_a=float(pairs[f"{metric}_a"].mean()),
                    mean_b=float(pairs[f"{metric}_b"].mean()),
                    delta=delta,
                    ci_low=low,
                    ci_high=high,
                    n_pairs=len(pairs),
                    n_docs=int(pairs["doc_id"].nunique()),
                    verdict=_verdict(
                        not higher_is_better(metric, directions), delta, low, high, min_delta
                    ),
                )
            )
    return Comparison(
        run_a,
        run_b,
        tuple(deltas),
        only_a=len(a) - len(merged),
        only_b=len(b) - len(merged),
        notes=_notes(run_a, run_b),
    )


def _notes(run_a: Path, run_b: Path) -> tuple[str, ...]:
    hashes = []
    for run_dir in (run_a, run_b):
        record = run_dir / RUN_JSON
        data = json.loads(record.read_text("utf-8")) if record.exists() else {}
        hashes.append(data.get("dataset_hash"))
    if hashes[0] and hashes[1] and hashes[0] != hashes[1]:
        return ("the runs read different dataset contents; only shared samples are paired",)
    return ()
