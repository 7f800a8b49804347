"""Aggregate per-unit contributions into long tables with document-clustered bootstrap CIs.

Every aggregate is a ratio of sums: ``value = sum(num) / sum(den)`` over the units of a
group. A mean is the case ``den = 1``; micro CER is ``num = edits, den = reference length``;
field F1 is ``num = 2 * true positives, den = predicted + reference pairs``. That one shape
makes the bootstrap one matrix product: sum num and den per document (D documents), draw
``B x D`` multinomial document counts (resampling documents with replacement, seeded), and
divide ``W @ num`` by ``W @ den``. The 95 % interval is the 2.5th-97.5th percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

UNTAGGED = "untagged"
_MAX_CELLS = 4_000_000  # replicate x document cells per chunk of the bootstrap


@dataclass(frozen=True)
class Aggregate:
    """One aggregate row name; ``count`` aggregates report the sum and no interval."""

    name: str
    count: bool = False


def num(name: str) -> str:
    """Column holding the numerator contributions of aggregate ``name``."""
    return f"{name}:num"


def den(name: str) -> str:
    """Column holding the denominator contributions of aggregate ``name``."""
    return f"{name}:den"


def _bootstrap(
    doc_num: np.ndarray, doc_den: np.ndarray, seed: int, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95 % interval per column of the ``D x M`` per-document sums."""
    docs = doc_num.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // max(docs, 1))
    ratios = []
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = rng.multinomial(docs, np.full(docs, 1.0 / docs), size=size).astype(float)
        top, bottom = weights @ doc_num, weights @ doc_den
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios.append(np.where(bottom > 0, top / bottom, np.nan))
    stacked = np.vstack(ratios)
    low = np.full(stacked.shape[1], np.nan)
    high = np.full(stacked.shape[1], np.nan)
    for column in range(stacked.shape[1]):
        finite = stacked[:, column][~np.isnan(stacked[:, column])]
        if finite.size:
            low[column], high[column] = np.percentile(finite, [2.5, 97.5])
    return low, high


def _group_rows(
    units: pd.DataFrame, aggregates: list[Aggregate], seed: int, n_boot: int
) -> list[dict[str, object]]:
    num_cols = [num(a.name) for a in aggregates]
    den_cols = [den(a.name) for a in aggregates]
    per_doc = units.groupby("doc_id", sort=True)[num_cols + den_cols].sum()
    doc_num = per_doc[num_cols].to_numpy(float)
    doc_den = per_doc[den_cols].to_numpy(float)
    total_num, total_den = doc_num.sum(axis=0), doc_den.sum(axis=0)
    counts = (units[den_cols].to_numpy(float) > 0).sum(axis=0)
    if n_boot > 0 and len(per_doc):
        low, high = _bootstrap(doc_num, doc_den, seed, n_boot)
    else:
        low = high = np.full(len(aggregates), np.nan)
    rows: list[dict[str, object]] = []
    for i, aggregate in enumerate(aggregates):
        if counts[i] == 0:
            continue
        if aggregate.count:
            value, ci_low, ci_high = total_num[i], np.nan, np.nan
        else:
            value, ci_low, ci_high = total_num[i] / total_den[i], low[i], high[i]
        rows.append(
            {
                "metric": aggregate.name,
                "value": float(value),
                "ci_low": float(ci_low),
                "ci_high": float(ci_high),
                "n": int(counts[i]),
            }
        )
    return rows


def aggregate_table(
    units: pd.DataFrame,
    aggregates: list[Aggregate],
    by: str | None,
    seed: int = 0,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """Long table ``[by], metric, value, ci_low, ci_high, n`` (``by`` = field, doc_type, tag)."""
    columns = [*([by] if by else []), "metric", "value", "ci_low", "ci_high", "n"]
    if by == "tag":
        units = units.assign(tag=[list(t) or [UNTAGGED] for t in units["tags"]]).explode("tag")
    rows: list[dict[str, object]] = []
    if by is None:
        rows = _group_rows(units, aggregates, seed, n_boot)
    else:
        for key, group in units.dropna(subset=[by]).groupby(by, sort=True):
            rows += [{by: key, **row} for row in _group_rows(group, aggregates, seed, n_boot)]
    return pd.DataFrame(rows, columns=columns)
