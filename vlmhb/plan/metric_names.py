"""The metric names a plan may ask for, standard library only.

A plan's ``metrics`` cell is checked against this table before anything runs, without
importing the metrics env's packages (numpy, pandas); a test keeps it equal to the registry
(``vlmhb.metrics._registry.METRICS``) so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable

# Registered name -> its aliases (names are matched case-insensitively).
METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "exact_match": ("exact", "em"),
    "anls": (),
    "ned": (),
    "cer": (),
    "wer": (),
    "bleu": (),
    "valid_but_wrong": (),
    "invalid_rate": (),
}


def unknown_metrics(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are neither a metric nor an alias (case-insensitive)."""
    known = {name.casefold() for name in METRIC_NAMES}
    known |= {alias.casefold() for aliases in METRIC_NAMES.values() for alias in aliases}
    return [name for name in names if name.strip() and name.strip().casefold() not in known]
