"""Latency targets for load sweeps: ``--sla ttft_p95=2s,e2e_p95=10s``.

Each condition bounds one serving figure from above (``ttft_p50/p95/p99``, ``itl_p50/p95``,
``e2e_p50/p95/p99``, in ``s`` or ``ms``; a bare number is seconds). A level meets the SLA
when every condition holds and none of its requests failed; for each sweep (runs that differ
only in concurrency) the verdict names the highest level that meets it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vlmhb.errors import VlmhbError
from vlmhb.plan.sweep import run_level, sweep_key

FIGURES = (
    "ttft_p50",
    "ttft_p95",
    "ttft_p99",
    "itl_p50",
    "itl_p95",
    "e2e_p50",
    "e2e_p95",
    "e2e_p99",
)
_CONDITION = re.compile(r"^\s*(\w+)\s*(?:<=|=)\s*([0-9.eE+-]+)\s*(ms|s)?\s*$")


class SlaSpecError(VlmhbError):
    """An ``--sla`` text that cannot be read."""


@dataclass(frozen=True)
class SlaCondition:
    """One upper bound on a serving figure, in seconds."""

    figure: str
    bound_s: float

    def __str__(self) -> str:
        return f"{self.figure}<={self.bound_s:g}s"


@dataclass(frozen=True)
class SlaVerdict:
    """One sweep against the SLA: its levels, whether each met it and why not."""

    label: str
    best_level: int | None
    levels: tuple[tuple[int, bool, str], ...]

    def describe(self) -> str:
        """One line: the highest level meeting the SLA, then each level's verdict."""
        best = f"highest level meeting it: {self.best_level}" if self.best_level else "no level"
        details = "; ".join(
            f"c={level} {'ok' if ok else 'misses: ' + why}" for level, ok, why in self.levels
        )
        return f"{self.label}: {best} ({details})"


def parse_sla(text: str) -> tuple[SlaCondition, ...]:
    """``ttft_p95=2s,e2e_p95=10s`` -> conditions; ``SlaSpecError`` naming what is wrong."""
    conditions = []
    for part in (p for p in text.split(",") if p.strip()):
        match = _CONDITION.match(part)
        if not match:
            raise SlaSpecError(f"--sla {text!r}: {part!r} is not FIGURE=NUMBER[s|ms]")
        figure, number, unit = match.groups()
        if figure.endswith("_s"):
            figure = figure[:-2]
        if figure not in FIGURES:
            raise SlaSpecError(f"--sla {text!r}: unknown figure {figure!r}; known: {FIGURES}")
        try:
            bound = float(number) / (1000.0 if unit == "ms" else 1.0)
        except ValueError as exc:
            raise SlaSpecError(f"--sla {text!r}: {number!r} is not a number") from exc
        conditions.append(SlaCondition(figure, bound))
    if not conditions:
        raise SlaSpecError(f"--sla {text!r}: no condition")
    return tuple(conditions)


def level_verdict(
    resources: dict[str, Any], conditions: Sequence[SlaCondition]
) -> tuple[bool, str]:
    """Whether one run's serving figures meet every condition, and what missed."""
    misses = []
    if resources.get("serving_errors"):
        misses.append(f"{resources['serving_errors']} error(s)")
    for condition in conditions:
        value = resources.get(f"{condition.figure}_s")
        if value is None:
            misses.append(f"{condition.figure} not measured")
        elif value > condition.bound_s:
            misses.append(f"{condition.figure}={value:.3g}s > {condition.bound_s:g}s")
    return not misses, ", ".join(misses)


def check_sla(
    records: Sequence[dict[str, Any]], conditions: Sequence[SlaCondition]
) -> list[SlaVerdict]:
    """One verdict per sweep among ``records`` (``run.json`` dicts of streamed runs)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if run_level(record) is not None and (record.get("resources") or {}).get("req_per_s"):
            groups.setdefault(sweep_key(record), []).append(record)
    verdicts = []
    for members in groups.values():
        members.sort(key=lambda r: run_level(r) or 0)
        levels = []
        for record in members:
            ok, why = level_verdict(record.get("resources") or {}, conditions)
            levels.append((run_level(record) or 0, ok, why))
        passing = [level for level, ok, _ in levels if ok]
        first = members[0]
        label = f"{first.get('model', '?')} [{first.get('backend', '?')}]"
        verdicts.append(SlaVerdict(label, max(passing) if passing else None, tuple(levels)))
    return verdicts
