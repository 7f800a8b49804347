"""The metric registry: a metric is one function over a batch of pairs plus one decorator.

``@metric("anls", higher_is_better=True)`` registers a function ``(PairBatch) -> MetricValues``.
A metric that also returns a numerator and a denominator per sample (edits and reference
length for CER) is aggregated twice, labelled: ``<name>_micro`` (sum of numerators over sum of
denominators) and ``<name>_macro`` (mean of per-sample values); otherwise as the plain mean.
A ``ratio`` metric's numerator/denominator give one plain ``<name>`` row (a rate over the
samples it applies to, e.g. typed fields only). Plan names are looked up case-insensitively,
so the v0.1 names ``CER``, ``WER``, ``BLEU`` work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vlmhb.metrics._errors import MetricsInputError

if TYPE_CHECKING:
    import numpy as np

    from vlmhb.metrics._text import PairBatch


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
    higher_is_better: bool,
    column: str | None = None,
    core: bool = False,
    aliases: Iterable[str] = (),
    ratio: bool = False,
) -> Callable[[MetricFunction], MetricFunction]:
    """Register ``function`` as metric ``name``; ``core`` metrics are always computed."""

    def register(function: MetricFunction) -> MetricFunction:
        METRICS[name] = MetricSpec(
            name=name,
            function=function,
            higher_is_better=higher_is_better,
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
        spec = lookup.get(key)
        if spec is None:
            known = ", ".join(sorted(METRICS))
            raise MetricsInputError(f"unknown metric {raw.strip()!r} (known: {known})")
        if spec not in chosen:
            chosen.append(spec)
    return chosen
