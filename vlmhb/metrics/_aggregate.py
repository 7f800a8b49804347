"""Aggregate per-unit contributions into long tables with document-clustered bootstrap CIs.

Every aggregate is a ratio of sums: ``value = sum(num) / sum(den)`` over the units of a
group. A mean is the case ``den = 1``; micro CER is ``num = edits, den = reference length``;
field F1 is ``num = 2 * true positives, den = predicted + reference pairs``.

That one shape makes the bootstrap a matrix product. Per table, the per-document sums of
every (group, num/den column) form a ``D x C`` matrix ``S``; a replicate resamples the run's
D documents with replacement (``B x D`` counts ``W``, seeded), and ``W @ S`` gives every
group's resampled sums at once. A group's statistic is recomputed on each whole-run resample
(so a group's document count varies, as it would in a new sample); replicates where a group
has no denominator are dropped. The 95 % interval is the 2.5th-97.5th percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

UNTAGGED = "untagged"
_MAX_CELLS = 4_000_000  # cells of one dense block (replicates x docs, or docs x columns)


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


def _resample_counts(rng: np.random.Generator, replicates: int, docs: int) -> np.ndarray:
    """``replicates x docs`` counts: how often each document is drawn in each replicate."""
    draws = rng.integers(0, docs, size=(replicates, docs))
    draws += np.arange(replicates)[:, None] * docs
    return np.bincount(draws.ravel(), minlength=replicates * docs).reshape(replicates, docs)


def _intervals(
    sums: np.ndarray, n_metrics: int, seed: int, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95 % intervals for ``D x (G * 2M)`` per-document sums (num block, den block
    per group); returns two ``G x M`` arrays."""
    docs, columns = sums.shape
    groups = columns // (2 * n_metrics)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // max(docs, 1))
    ratios = np.empty((n_boot, groups, n_metrics))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = _resample_counts(rng, size, docs).astype(float)
        totals = (weights @ sums).reshape(size, groups, 2, n_metrics)
        top, bottom = totals[:, :, 0, :], totals[:, :, 1, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios[start : start + size] = np.where(bottom > 0, top / bottom, np.nan)
    low = np.full((groups, n_metrics), np.nan)
    high = np.full((groups, n_metrics), np.nan)
    seen = ~np.isnan(ratios).all(axis=0)
    if seen.any():
        low[seen], high[seen] = np.nanpercentile(ratios[:, seen], [2.5, 97.5], axis=0)
    return low, high


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
    keep = np.ones(len(units), bool) if by is None else units[by].notna().to_numpy()
    units = units[keep]
    if units.empty:
        return pd.DataFrame([], columns=columns)
    doc_index, doc_ids = pd.factorize(units["doc_id"], sort=True)
    if by is None:
        group_index, groups = np.zeros(len(units), np.int64), pd.Index([None])
    else:
        group_index, groups = pd.factorize(units[by], sort=True)
    value_cols = [num(a.name) for a in aggregates] + [den(a.name) for a in aggregates]
    values = units[value_cols].to_numpy(float)
    n_groups, n_metrics, n_docs = len(groups), len(aggregates), len(doc_ids)
    counts = np.zeros((n_groups, n_metrics), np.int64)
    np.add.at(counts, group_index, values[:, n_metrics:] > 0)
    # per (group, document) sums: the only thing the bootstrap needs
    per_doc = pd.DataFrame(values).groupby([group_index, doc_index], sort=True).sum()
    g_of = per_doc.index.get_level_values(0).to_numpy()
    d_of = per_doc.index.get_level_values(1).to_numpy()
    sums = per_doc.to_numpy(float)
    totals = np.zeros((n_groups, 2 * n_metrics))
    np.add.at(totals, g_of, sums)
    totals = totals.reshape(n_groups, 2, n_metrics)
    low = np.full((n_groups, n_metrics), np.nan)
    high = np.full((n_groups, n_metrics), np.nan)
    step = max(1, _MAX_CELLS // max(n_docs * 2 * n_metrics, 1))
    for first in range(0, n_groups if n_boot > 0 else 0, step):
        last = min(first + step, n_groups)
        rows_in = (g_of >= first) & (g_of < last)
        block = np.zeros((n_docs, last - first, 2 * n_metrics))
        block[d_of[rows_in], g_of[rows_in] - first] = sums[rows_in]
        low[first:last], high[first:last] = _intervals(
            block.reshape(n_docs, -1), n_metrics, seed, n_boot
        )
    rows: list[dict[str, object]] = []
    for g, group in enumerate(groups):
        for m, aggregate in enumerate(aggregates):
            n = int(counts[g, m])
            if n == 0:
                continue
            top, bottom = totals[g, 0, m], totals[g, 1, m]
            row = {"metric": aggregate.name, "n": n}
            if aggregate.count:
                row.update(value=float(top), ci_low=np.nan, ci_high=np.nan)
            else:
                row.update(value=float(top / bottom), ci_low=low[g, m], ci_high=high[g, m])
            rows.append({by: group, **row} if by else row)
    return pd.DataFrame(rows, columns=columns)
