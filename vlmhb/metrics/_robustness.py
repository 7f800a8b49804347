"""Robustness ladders: exact match against the severity of each degradation, and its area.

Documents tagged ``<degradation>:<level>`` (``blur:3``, levels 1-4, see
``vlmhb.data.synth.degrade``) and ``clean`` (level 0) give, per degradation, the curve of
exact match (with its bootstrap CI, from the ``by_tag`` table) against severity. The
*robustness score* is the area under that curve relative to clean: the trapezoid area of
``accuracy(level) / accuracy(clean)`` over levels 0..max, divided by max (1.0: no loss at any
level; 0.5: half the accuracy lost on average). The run's ``robustness`` is the mean over its
degradations. Both go into ``metrics.json`` (``robustness``) and as rows of ``overall``
(``robustness``, ``robustness_<degradation>``; higher is better, no CI).
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

CLEAN = "clean"
_LEVEL_TAG = re.compile(r"^([a-z_]+):([1-9])$")


def _point(row: pd.Series, level: int) -> dict[str, Any]:
    return {
        "level": level,
        "value": float(row["value"]),
        "ci_low": float(row["ci_low"]),
        "ci_high": float(row["ci_high"]),
        "n": int(row["n"]),
    }


def area_ratio(levels: list[int], values: list[float], clean: float) -> float | None:
    """Trapezoid area of ``values / clean`` over ``[0, *levels]``, divided by the last level."""
    if clean <= 0 or not levels:
        return None
    xs = [0, *levels]
    ys = [1.0, *(value / clean for value in values)]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / xs[-1]


def robustness_ladders(by_tag: pd.DataFrame, metric: str = "exact_match") -> dict[str, Any]:
    """``{"metric", "clean", "degradations": {name: {"levels": [...], "score"}}, "score"}``;
    empty when the run has no clean documents or no severity tags."""
    rows = by_tag[by_tag["metric"] == metric]
    clean = rows[rows["tag"] == CLEAN]
    if clean.empty:
        return {}
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in rows.itertuples(index=False):
        match = _LEVEL_TAG.match(str(row.tag))
        if match:
            series = pd.Series(row._asdict())
            curves.setdefault(match.group(1), []).append(_point(series, int(match.group(2))))
    if not curves:
        return {}
    base = _point(clean.iloc[0], 0)
    degradations: dict[str, Any] = {}
    for name, points in sorted(curves.items()):
        points.sort(key=lambda p: p["level"])
        score = area_ratio(
            [p["level"] for p in points], [p["value"] for p in points], base["value"]
        )
        degradations[name] = {"levels": [base, *points], "score": score}
    scores = [d["score"] for d in degradations.values() if d["score"] is not None]
    return {
        "metric": metric,
        "clean": base,
        "degradations": degradations,
        "score": sum(scores) / len(scores) if scores else None,
    }


def with_robustness_rows(overall: pd.DataFrame, ladders: dict[str, Any]) -> pd.DataFrame:
    """``overall`` plus ``robustness`` and ``robustness_<degradation>`` rows (no CI)."""
    n = ladders["clean"]["n"]
    rows = [("robustness", ladders["score"])]
    rows += [(f"robustness_{name}", d["score"]) for name, d in ladders["degradations"].items()]
    extra = pd.DataFrame(
        [
            {"metric": name, "value": value, "ci_low": math.nan, "ci_high": math.nan, "n": n}
            for name, value in rows
            if value is not None
        ],
        columns=overall.columns,
    )
    return pd.concat([overall, extra], ignore_index=True) if len(extra) else overall
