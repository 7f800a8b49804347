"""Robustness scores of two runs side by side, for ``vlmhb compare``.

Reads each run's ``metrics/metrics.json`` → ``robustness`` (written by the metrics stage for
runs on documents tagged with severities, see ``vlmhb.metrics._robustness``): the score per
degradation and overall, for A and B, and B - A. Runs without ladders give no rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OVERALL = "(all)"


@dataclass(frozen=True)
class RobustnessDelta:
    """One degradation's robustness score in both runs (``None``: not measured)."""

    degradation: str
    score_a: float | None
    score_b: float | None

    @property
    def delta(self) -> float | None:
        """B - A, when both were measured."""
        if self.score_a is None or self.score_b is None:
            return None
        return self.score_b - self.score_a


def _ladders(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics" / "metrics.json"
    try:
        return json.loads(path.read_text("utf-8")).get("robustness") or {}
    except (OSError, ValueError):
        return {}


def robustness_deltas(run_a: Path, run_b: Path) -> list[RobustnessDelta]:
    """Overall and per-degradation robustness of A and B (empty when neither has ladders)."""
    a, b = _ladders(run_a), _ladders(run_b)
    if not a and not b:
        return []
    names = sorted(set(a.get("degradations", {})) | set(b.get("degradations", {})))

    def score(ladders: dict[str, Any], name: str) -> float | None:
        return (ladders.get("degradations", {}).get(name) or {}).get("score")

    rows = [RobustnessDelta(OVERALL, a.get("score"), b.get("score"))]
    return rows + [RobustnessDelta(name, score(a, name), score(b, name)) for name in names]
