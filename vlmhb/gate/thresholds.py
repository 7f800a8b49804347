"""The CI/CD gate: ``--fail-under`` thresholds on a plan's metrics (JUnit XML: ``junit``).

A threshold is ``[KEY=VALUE:]... METRIC OP NUMBER``:

* ``exact_match=0.8`` — every run: exact match at least 0.8. A bare ``=`` means "at least"
  for a metric where higher is better and "at most" where lower is better (CER, WER, NED,
  the ``*_rate`` metrics, ``valid_but_wrong``), so ``cer_micro=0.1`` is CER ≤ 0.1. The
  direction is the one the run's ``metrics/metrics.json`` records
  (``vlmhb.run.metric_directions``).
* ``cer_micro<=0.1``, ``anls>0.5`` — an explicit comparison (``>=``, ``<=``, ``>``, ``<``).
* ``model=tesseract-rus:field=surname:exact_match=0.9`` — selectors narrow the check:
  ``run`` (run id or plan ``name``), ``model``, ``backend`` pick runs (shell globs allowed:
  ``model=Qwen*``); ``field`` or ``doc_type`` read that row of ``metrics/by_field`` or
  ``metrics/by_doc_type`` instead of ``metrics/overall``.
* ``ttft_p95<=2``, ``e2e_p99=10``, ``req_per_s>=5`` — a metric not in the metric tables is
  read from ``run.json``'s resource summary (serving figures, latency, throughput; a name
  without its ``_s`` suffix finds it); latency figures are lower-is-better.

Each (threshold, matching run) is one check. A check fails when the value misses the
threshold, when the run failed or was not scored, or when the metric was not measured; a
threshold that matches no run fails too (a typo must not pass a pipeline). The CLI exits 3
when a check fails (``EXIT_GATE``), after 1 for failed runs and 2 for bad input.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmhb.errors import VlmhbError
from vlmhb.monitor.serving import serving_higher_is_better
from vlmhb.run.files import BY_DOC_TYPE, BY_FIELD, OVERALL, RUN_JSON, metrics_table
from vlmhb.run.metric_directions import higher_is_better, read_directions

if TYPE_CHECKING:
    from vlmhb.run.execute import RunOutcome

EXIT_GATE = 3
RUN_KEYS = ("run", "model", "backend")
ROW_KEYS = ("field", "doc_type")
_CONDITION = re.compile(r"^\s*([A-Za-z][\w.-]*)\s*(>=|<=|>|<|=)\s*([-+0-9.eE]+)\s*$")


class GateSpecError(VlmhbError):
    """A ``--fail-under`` threshold that cannot be read."""


@dataclass(frozen=True)
class Threshold:
    """One parsed ``--fail-under`` spec."""

    spec: str
    metric: str
    op: str  # >= <= > <, or = (at least / at most, by the metric's direction)
    value: float
    selectors: tuple[tuple[str, str], ...] = ()

    def comparison(self, higher_is_better: bool) -> str:
        """The comparison this threshold makes for a metric of the given direction."""
        if self.op != "=":
            return self.op
        return ">=" if higher_is_better else "<="

    def passes(self, measured: float, higher_is_better: bool = True) -> bool:
        """Whether a measured value meets the threshold."""
        return {
            ">=": measured >= self.value,
            "<=": measured <= self.value,
            ">": measured > self.value,
            "<": measured < self.value,
        }[self.comparison(higher_is_better)]

    def selector(self, key: str) -> str | None:
        """The value of one selector, or None."""
        return dict(self.selectors).get(key)


def parse_threshold(spec: str) -> Threshold:
    """``model=m:field=surname:exact_match=0.9`` -> ``Threshold``; ``GateSpecError`` if bad."""
    parts = [part.strip() for part in spec.split(":")]
    selectors: list[tuple[str, str]] = []
    for part in parts[:-1]:
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in RUN_KEYS + ROW_KEYS or not value.strip():
            raise GateSpecError(
                f"--fail-under {spec!r}: {part!r} is not a selector "
                f"({', '.join(RUN_KEYS + ROW_KEYS)} as KEY=VALUE)"
            )
        selectors.append((key, value.strip()))
    keys = [key for key, _ in selectors]
    if len(set(keys)) != len(keys) or {"field", "doc_type"} <= set(keys):
        raise GateSpecError(f"--fail-under {spec!r}: a selector twice, or field with doc_type")
    match = _CONDITION.match(parts[-1])
    if not match:
        raise GateSpecError(
            f"--fail-under {spec!r}: the last part must be METRIC=VALUE or METRIC<=VALUE ..."
        )
    metric, op, number = match.groups()
    try:
        bound = float(number)
    except ValueError as exc:
        raise GateSpecError(f"--fail-under {spec!r}: {number!r} is not a number") from exc
    return Threshold(spec, metric, op, bound, tuple(selectors))


def parse_thresholds(specs: Sequence[str]) -> list[Threshold]:
    """Every ``--fail-under`` spec, parsed before anything runs."""
    return [parse_threshold(spec) for spec in specs]


@dataclass(frozen=True)
class Measure:
    """A metric value as the metrics stage wrote it."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None

    def describe(self, metric: str) -> str:
        """``exact_match = 0.712 (95% CI 0.650-0.780, n=120)``."""
        text = f"{metric} = {self.value:.4g}"
        extra = []
        if self.ci_low is not None and self.ci_high is not None:
            extra.append(f"95% CI {self.ci_low:.4g}-{self.ci_high:.4g}")
        if self.n is not None:
            extra.append(f"n={self.n}")
        return f"{text} ({', '.join(extra)})" if extra else text


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def read_measure(
    run_dir: Path, metric: str, *, field: str | None = None, doc_type: str | None = None
) -> Measure | None:
    """A metric of a scored run folder: overall, or for one field or document type."""
    import pandas as pd

    table, key, wanted = OVERALL, None, None
    if field is not None:
        table, key, wanted = BY_FIELD, "field", field
    elif doc_type is not None:
        table, key, wanted = BY_DOC_TYPE, "doc_type", doc_type
    path = run_dir / metrics_table(table, "csv")
    if not path.exists():
        return None
    frame = pd.read_csv(path, dtype={key: str} if key else None)
    rows = frame[frame["metric"] == metric]
    if key is not None:
        rows = rows[rows[key] == wanted]
    if rows.empty:
        return None
    row = rows.iloc[0]
    value = _number(row.get("value"))
    if value is None:
        return None
    n = _number(row.get("n"))
    return Measure(
        value,
        _number(row.get("ci_low")),
        _number(row.get("ci_high")),
        None if n is None else int(n),
    )


def read_resource_measure(run_dir: Path, metric: str) -> Measure | None:
    """A figure of ``run.json``'s resource summary (serving: ``ttft_p95`` reads ``ttft_p95_s``)."""
    import json

    try:
        resources = json.loads((run_dir / RUN_JSON).read_text("utf-8")).get("resources") or {}
    except (OSError, ValueError):
        return None
    for key in (metric, f"{metric}_s"):
        value = _number(resources.get(key))
        if value is not None:
            return Measure(value)
    return None


@dataclass(frozen=True)
class Check:
    """One threshold against one run."""

    threshold: Threshold
    run_id: str
    label: str
    passed: bool
    message: str
    measure: Measure | None = None


@dataclass(frozen=True)
class GateResult:
    """Every check of a plan's thresholds."""

    checks: tuple[Check, ...]

    @property
    def missed(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if not check.passed]


def _matches(threshold: Threshold, outcome: RunOutcome) -> bool:
    prepared = outcome.prepared
    run = prepared.run
    candidates: dict[str, list[str]] = {
        "run": [prepared.run_id, run.name or ""],
        "model": [run.model, prepared.model],
        "backend": [run.backend],
    }
    for key in RUN_KEYS:
        pattern = threshold.selector(key)
        if pattern is None:
            continue
        if not any(fnmatch.fnmatchcase(value, pattern) for value in candidates[key] if value):
            return False
    return True


def _check(threshold: Threshold, outcome: RunOutcome) -> Check:
    prepared = outcome.prepared
    ids = (threshold, prepared.run_id, prepared.run.label)
    if not outcome.ok:
        return Check(*ids, False, f"run {outcome.status}: {outcome.error or 'no metrics'}")
    measure = read_measure(
        prepared.run_dir,
        threshold.metric,
        field=threshold.selector("field"),
        doc_type=threshold.selector("doc_type"),
    )
    if measure is None and not any(threshold.selector(k) for k in ROW_KEYS):
        measure = read_resource_measure(prepared.run_dir, threshold.metric)
    where = "".join(f" {k}={threshold.selector(k)}" for k in ROW_KEYS if threshold.selector(k))
    if measure is None:
        return Check(*ids, False, f"{threshold.metric}{where} was not measured for this run")
    higher = higher_is_better(threshold.metric, read_directions(prepared.run_dir))
    if higher is None:
        higher = serving_higher_is_better(threshold.metric)
    if higher is None and threshold.op == "=":
        return Check(
            *ids, False, f"{threshold.metric}: direction unknown; write >= or <= explicitly"
        )
    higher = True if higher is None else higher
    passed = threshold.passes(measure.value, higher)
    verdict = "meets" if passed else "misses"
    name = f"{threshold.metric}[{where.strip()}]" if where else threshold.metric
    op = threshold.comparison(higher)
    message = f"{measure.describe(name)} {verdict} {op} {threshold.value:g}"
    return Check(*ids, passed, message, measure)


def check_gate(outcomes: Sequence[RunOutcome], thresholds: Sequence[Threshold]) -> GateResult:
    """Check every threshold against every run it selects (``RunOutcome`` objects)."""
    checks: list[Check] = []
    for threshold in thresholds:
        matched = [o for o in outcomes if _matches(threshold, o)]
        if not matched:
            checks.append(Check(threshold, "-", "-", False, "no run of the plan matches"))
        checks.extend(_check(threshold, outcome) for outcome in matched)
    return GateResult(tuple(checks))
