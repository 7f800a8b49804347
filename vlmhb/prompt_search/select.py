"""Choose the winner per document type and field, and say whether the win is real.

For each unit (a document type and field, or a document type over all its fields) every
candidate's mean of the chosen per-sample metric is taken over the search documents. The best
mean wins (on equal means the earlier candidate, the default first). Its difference to the
runner-up and to the default is the mean paired difference over the samples both answered,
with a 95 % CI from a bootstrap that resamples documents (``vlmhb.gate.compare``'s). A
difference whose CI includes zero is a *tie*, not a win. On the confirm documents the winner,
runner-up and default are scored again, with the winner-minus-default difference and its CI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vlmhb.gate.compare import bootstrap_delta
from vlmhb.metrics._registry import HIGHER_IS_BETTER, direction_of

ALL_FIELDS = "(all)"


@dataclass(frozen=True)
class Estimate:
    """A mean (or mean difference) with its 95 % CI and how many samples and documents."""

    value: float
    low: float
    high: float
    n: int
    n_docs: int

    @property
    def includes_zero(self) -> bool:
        """Whether the CI covers zero (the difference is within the noise)."""
        return self.low <= 0.0 <= self.high


@dataclass(frozen=True)
class Selection:
    """The outcome for one document type and field (``(all)``: the type as a whole)."""

    doc_type: str
    field: str
    winner: str
    runner_up: str | None
    verdict: str  # win | tie | only (a single candidate answered)
    scores: dict[str, Estimate]  # search part, per candidate
    vs_runner_up: Estimate | None
    vs_default: Estimate | None
    default_verdict: str  # win | tie | is-default
    confirm: dict[str, Estimate] = dataclasses.field(
        default_factory=dict
    )  # winner, runner-up, default
    confirm_vs_default: Estimate | None = None


def _mean_ci(frame: Any, metric: str, n_boot: int, rng: Any) -> Estimate:
    values = frame[metric].to_numpy(float)
    mean, low, high = bootstrap_delta(frame["doc_id"].to_numpy(), values, n_boot=n_boot, rng=rng)
    return Estimate(mean, low, high, len(values), int(frame["doc_id"].nunique()))


def _paired(a: Any, b: Any, metric: str, n_boot: int, rng: Any) -> Estimate | None:
    """Mean of ``a - b`` over the samples both answered, with its document-clustered CI."""
    merged = a.merge(b, on=["doc_id", "field"], suffixes=("_a", "_b"))
    if merged.empty:
        return None
    diffs = merged[f"{metric}_a"].to_numpy(float) - merged[f"{metric}_b"].to_numpy(float)
    delta, low, high = bootstrap_delta(merged["doc_id"].to_numpy(), diffs, n_boot=n_boot, rng=rng)
    return Estimate(delta, low, high, len(diffs), int(merged["doc_id"].nunique()))


def select_winners(
    frames: Mapping[str, Any],
    order: Sequence[str],
    default: str,
    metric: str,
    search_docs: frozenset[str],
    confirm_docs: frozenset[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[Selection]:
    """Selections per (doc_type, field) and per (doc_type, ``(all)``), in a stable order.

    ``frames``: per candidate, one row per scored sample with ``doc_id``, ``doc_type``,
    ``field`` and the ``metric`` column; ``order`` breaks ties between equal means.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    lower = direction_of(metric, HIGHER_IS_BETTER) is False
    tagged = [f.assign(candidate=name) for name, f in frames.items() if not f.empty]
    if not tagged:
        return []
    table = pd.concat(tagged, ignore_index=True).dropna(subset=[metric])
    units = [(dt, str(f)) for (dt, f), _ in table.groupby(["doc_type", "field"], sort=True)]
    units += [(dt, ALL_FIELDS) for dt in sorted(table["doc_type"].unique())]
    selections = []
    for doc_type, field_name in units:
        unit = table[table["doc_type"] == doc_type]
        if field_name != ALL_FIELDS:
            unit = unit[unit["field"] == field_name]
        search = unit[unit["doc_id"].isin(search_docs)]
        parts = {c: g for c, g in search.groupby("candidate", sort=False)}
        ranked = [c for c in order if c in parts]
        if not ranked:
            continue
        scores = {c: _mean_ci(parts[c], metric, n_boot, rng) for c in ranked}
        ranked.sort(key=lambda c: scores[c].value if lower else -scores[c].value)  # stable
        winner = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        vs_runner = (
            _paired(parts[winner], parts[runner_up], metric, n_boot, rng) if runner_up else None
        )
        verdict = "only" if runner_up is None else _verdict(vs_runner)
        if winner == default:
            vs_default, default_verdict = None, "is-default"
        else:
            vs_default = (
                _paired(parts[winner], parts[default], metric, n_boot, rng)
                if default in parts
                else None
            )
            default_verdict = _verdict(vs_default)
        confirm, confirm_vs_default = _confirm_scores(
            unit, confirm_docs, (winner, runner_up, default), metric, n_boot, rng
        )
        selections.append(
            Selection(
                doc_type=str(doc_type),
                field=field_name,
                winner=winner,
                runner_up=runner_up,
                verdict=verdict,
                scores=scores,
                vs_runner_up=vs_runner,
                vs_default=vs_default,
                default_verdict=default_verdict,
                confirm=confirm,
                confirm_vs_default=confirm_vs_default,
            )
        )
    return selections


def _verdict(estimate: Estimate | None) -> str:
    return "tie" if estimate is None or estimate.includes_zero else "win"


def _confirm_scores(
    unit: Any,
    confirm_docs: frozenset[str],
    who: tuple[str, str | None, str],
    metric: str,
    n_boot: int,
    rng: Any,
) -> tuple[dict[str, Estimate], Estimate | None]:
    if not confirm_docs:
        return {}, None
    held = unit[unit["doc_id"].isin(confirm_docs)]
    parts = {c: g for c, g in held.groupby("candidate", sort=False)}
    named = [c for c in dict.fromkeys(who) if c is not None and c in parts]
    scores = {c: _mean_ci(parts[c], metric, n_boot, rng) for c in named}
    winner, _, default = who
    versus = None
    if winner != default and winner in parts and default in parts:
        versus = _paired(parts[winner], parts[default], metric, n_boot, rng)
    return scores, versus
