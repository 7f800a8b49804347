"""Aggregate per-unit contributions into long tables with document-clustered bootstrap CIs.

Every aggregate is a ratio of sums: ``value = sum(num) / sum(den)`` over the units of a
group. A mean is the case ``den = 1``; micro CER is ``num = edits, den = reference length``;
field F1 is ``num = 2 * true positives, den = predicted + reference pairs``.

That one shape makes the bootstrap a matrix product. The per-document sums of every
(table, group, num/den column) form a ``D x C`` matrix ``S`` (float32, built in blocks of
bounded size); a replicate resamples the run's D documents with replacement (``B x D``
counts ``W``, seeded, identical for every block and table), and ``W @ S`` gives every group's
resampled sums at once. A group's statistic is recomputed on each whole-run resample (so a
group's document count varies, as it would in a new sample); replicates where a group has no
denominator are dropped. The 95 % interval is the 2.5th-97.5th percentile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

UNTAGGED = "untagged"
_MAX_CELLS = 8_000_000  # cells of one dense block (replicates x docs, or docs x columns)


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
    per group); returns two ``G x M`` arrays. Same seed, same document resamples."""
    docs, columns = sums.shape
    groups = columns // (2 * n_metrics)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // max(docs, 1))
    ratios = np.empty((n_boot, groups, n_metrics))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = _resample_counts(rng, size, docs).astype(np.float32)
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


@dataclass
class _Table:
    """One table's groups and their per-(group, document) sums, before the bootstrap."""

    by: str | None
    groups: Sequence[object]
    counts: np.ndarray  # G x M units with a denominator
    totals: np.ndarray  # G x 2 x M sums over the group
    group_of: np.ndarray  # per (group, doc) row: group index
    doc_of: np.ndarray  # per (group, doc) row: document index
    sums: np.ndarray  # per (group, doc) row: 2M sums (numerators, then denominators)


def _prepare(units: pd.DataFrame, value_cols: list[str], by: str | None, docs: pd.Index) -> _Table:
    n_metrics = len(value_cols) // 2
    if by == "tag":
        units = units.assign(tag=[list(t) or [UNTAGGED] for t in units["tags"]]).explode("tag")
    if by is not None:
        units = units[units[by].notna().to_numpy()]
    doc_index = docs.get_indexer(units["doc_id"])
    if by is None:
        group_index, groups = np.zeros(len(units), np.int64), [None] if len(units) else []
    else:
        group_index, uniques = pd.factorize(units[by], sort=True)
        groups = list(uniques)
    values = units[value_cols].to_numpy(float)
    counts = np.zeros((len(groups), n_metrics), np.int64)
    np.add.at(counts, group_index, values[:, n_metrics:] > 0)
    per_doc = pd.DataFrame(values).groupby([group_index, doc_index], sort=True).sum()
    group_of = per_doc.index.get_level_values(0).to_numpy()
    sums = per_doc.to_numpy(float)
    totals = np.zeros((len(groups), 2 * n_metrics))
    np.add.at(totals, group_of, sums)
    doc_of = per_doc.index.get_level_values(1).to_numpy()
    return _Table(by, groups, counts, totals.reshape(-1, 2, n_metrics), group_of, doc_of, sums)


def _bootstrap_all(
    tables: list[_Table], n_docs: int, n_metrics: int, seed: int, n_boot: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Intervals for every group of every table; groups go in blocks of bounded size, each
    block seeing the same document resamples (same seed)."""
    slots = [(t, g) for t, table in enumerate(tables) for g in range(len(table.groups))]
    shape = [(len(table.groups), n_metrics) for table in tables]
    bounds = [(np.full(size, np.nan), np.full(size, np.nan)) for size in shape]
    step = max(1, _MAX_CELLS // max(n_docs * 2 * n_metrics, 1))
    for first in range(0, len(slots) if n_boot > 0 and n_docs else 0, step):
        batch = slots[first : first + step]
        block = np.zeros((n_docs, len(batch), 2 * n_metrics), np.float32)
        for column, (t, g) in enumerate(batch):
            rows = tables[t].group_of == g
            block[tables[t].doc_of[rows], column] = tables[t].sums[rows]
        low, high = _intervals(block.reshape(n_docs, -1), n_metrics, seed, n_boot)
        for column, (t, g) in enumerate(batch):
            bounds[t][0][g], bounds[t][1][g] = low[column], high[column]
    return bounds


def aggregate_tables(
    units: pd.DataFrame,
    aggregates: list[Aggregate],
    tables: dict[str, str | None],
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, pd.DataFrame]:
    """Long tables ``[by], metric, value, ci_low, ci_high, n``, one per ``name: by`` entry
    (``by`` = field, doc_type, tag, or None for overall)."""
    value_cols = [num(a.name) for a in aggregates] + [den(a.name) for a in aggregates]
    docs = pd.Index(sorted(units["doc_id"].unique()))
    prepared = [_prepare(units, value_cols, by, docs) for by in tables.values()]
    bounds = _bootstrap_all(prepared, len(docs), len(aggregates), seed, n_boot)
    return {
        name: _rows(table, aggregates, *bound)
        for name, table, bound in zip(tables, prepared, bounds, strict=True)
    }


def _rows(
    table: _Table, aggregates: list[Aggregate], low: np.ndarray, high: np.ndarray
) -> pd.DataFrame:
    columns = [*([table.by] if table.by else []), "metric", "value", "ci_low", "ci_high", "n"]
    rows: list[dict[str, object]] = []
    for g, group in enumerate(table.groups):
        for m, aggregate in enumerate(aggregates):
            n = int(table.counts[g, m])
            if n == 0:
                continue
            top, bottom = table.totals[g, 0, m], table.totals[g, 1, m]
            row: dict[str, object] = {"metric": aggregate.name, "n": n}
            if aggregate.count:
                row.update(value=float(top), ci_low=np.nan, ci_high=np.nan)
            else:
                row.update(value=float(top / bottom), ci_low=low[g, m], ci_high=high[g, m])
            rows.append({table.by: group, **row} if table.by else row)
    return pd.DataFrame(rows, columns=columns)
