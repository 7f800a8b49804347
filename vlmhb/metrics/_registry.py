"""The metric registry: a metric is one function over a batch of pairs plus one decorator.

``@metric("anls", higher_is_better=True)`` registers a function ``(PairBatch) -> MetricValues``.
A metric that also returns a numerator and a denominator per sample (edits and reference
length for CER) is aggregated twice, labelled: ``<name>_micro`` (sum of numerators over sum of
denominators) and ``<name>_macro`` (mean of per-sample values); otherwise as the plain mean.
A ``ratio`` metric's numerator/denominator give one plain ``<name>`` row (a rate over the
samples it applies to, e.g. typed fields only). Plan names are looked up case-insensitively,
so the v0.1 names ``CER``, ``WER``, ``BLEU`` work.

Which way is better is owned here: :data:`HIGHER_IS_BETTER` for every built-in score (the
metric functions, the aggregates the scorer adds, the per-sample columns), the decorator's
``higher_is_better`` for any other metric. ``metrics.json`` records it per metric; gate,
compare and the report read it from there. This module is standard library only (numpy only
for type checking), so the orchestrator reads the table for folders scored before it was
recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vlmhb.metrics._errors import MetricsInputError

if TYPE_CHECKING:
    import numpy as np

    from vlmhb.metrics._text import PairBatch


# Built-in scores -> whether a higher value is the better one.
HIGHER_IS_BETTER: dict[str, bool] = {
    # metric functions (_text.py) and their per-sample columns
    "exact_match": True,
    "exact": True,
    "anls": True,
    "ned": False,
    "cer": False,
    "wer": False,
    "bleu": True,
    # scores the scorer adds (_score.py): unnormalized, answer hygiene, JSON extraction
    "exact_match_raw": True,
    "exact_raw": True,
    "cer_raw": False,
    "missing_answer_rate": False,
    "mixed_script_answers": False,
    "field_precision": True,
    "field_recall": True,
    "field_f1": True,
    "json_parse_failure_rate": False,
    "missing_field_rate": False,
    "invented_field_rate": False,
    # field validity (_validity.py): wrong answers a validator would not catch, or would
    "valid_but_wrong": False,
    "invalid_rate": False,
    "invalid": False,
}
_AVERAGES = ("_micro", "_macro")


def direction_of(name: str, table: Mapping[str, bool] = HIGHER_IS_BETTER) -> bool | None:
    """Whether higher is better for ``name`` (``cer_micro`` as ``cer``); None when unknown."""
    if name in table:
        return table[name]
    for suffix in _AVERAGES:
        if name.endswith(suffix) and name[: -len(suffix)] in table:
            return table[name[: -len(suffix)]]
    return None


@dataclass(frozen=True)
class MetricValues:
    """Per-sample values, and for micro-averaged metrics the per-sample numerator/denominator."""

    per_sample: np.ndarray
    numerator: np.ndarray | None = None
    denominator: np.ndarray | None = None


MetricFunction = Callable[["PairBatch"], MetricValues]


@dataclass(frozen=True)
class MetricSpec:
    """Everything known about one metric, declared once by :func:`metric`."""

    name: str
    function: MetricFunction
    higher_is_better: bool
    column: str
    core: bool
    aliases: tuple[str, ...]
    description: str
    ratio: bool = False

    def aggregate_names(self, micro: bool) -> list[str]:
        """Names of the aggregate rows this metric produces."""
        return [f"{self.name}_micro", f"{self.name}_macro"] if micro else [self.name]


METRICS: dict[str, MetricSpec] = {}


def metric(
    name: str,
    *,
    higher_is_better: bool | None = None,
    column: str | None = None,
    core: bool = False,
    aliases: Iterable[str] = (),
    ratio: bool = False,
) -> Callable[[MetricFunction], MetricFunction]:
    """Register ``function`` as metric ``name``; ``core`` metrics are always computed.

    ``higher_is_better`` defaults to the built-in table; a metric not in it must give it.
    """
    higher = HIGHER_IS_BETTER.get(name) if higher_is_better is None else higher_is_better
    if higher is None:
        raise ValueError(f"metric {name!r}: say whether higher is better (higher_is_better=)")

    def register(function: MetricFunction) -> MetricFunction:
        METRICS[name] = MetricSpec(
            name=name,
            function=function,
            higher_is_better=higher,
            column=column or name,
            core=core,
            aliases=tuple(aliases),
            ratio=ratio,
            description=(function.__doc__ or "").strip().splitlines()[0]
            if function.__doc__
            else "",
        )
        return function

    return register


def resolve_metrics(names: Iterable[str] | None) -> list[MetricSpec]:
    """The core metrics plus the named ones (case-insensitive, aliases allowed), in order."""
    lookup = {spec.name.casefold(): spec for spec in METRICS.values()}
    for spec in METRICS.values():
        lookup.update({alias.casefold(): spec for alias in spec.aliases})
    chosen = [spec for spec in METRICS.values() if spec.core]
    for raw in names or ():
        key = raw.strip().casefold()
        if not key:
            continue
        found = lookup.get(key)
        if found is None:
            known = ", ".join(sorted(METRICS))
            raise MetricsInputError(f"unknown metric {raw.strip()!r} (known: {known})")
        if found not in chosen:
            chosen.append(found)
    return chosen


def directions(names: Iterable[str]) -> dict[str, bool]:
    """``{name: higher_is_better}`` for the given metric, aggregate and column names.

    Registered metrics (plugins included) first, by name and column, then the built-in table.
    """
    table = dict(HIGHER_IS_BETTER)
    for spec in METRICS.values():
        table[spec.name] = table[spec.column] = spec.higher_is_better
    found = {name: direction_of(name, table) for name in names}
    return {name: higher for name, higher in found.items() if higher is not None}
