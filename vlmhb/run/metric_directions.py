"""Which way is better for each metric of a scored run folder, as ``metrics.json`` records it.

The metrics registry (``vlmhb.metrics._registry``) owns the directions; the metrics stage
writes them into ``metrics/metrics.json`` (``higher_is_better``), and the gate, compare and the
report read them from there. A folder scored before that key existed falls back to the
registry's table of built-in scores (a standard-library import).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from vlmhb.metrics._registry import HIGHER_IS_BETTER, direction_of
from vlmhb.run.files import METRICS_DIR, METRICS_JSON


def read_directions(run_dir: Path) -> dict[str, bool]:
    """``{metric: higher_is_better}``: what the run folder records, over the registry's table."""
    try:
        summary = json.loads((run_dir / METRICS_DIR / METRICS_JSON).read_text("utf-8"))
    except (OSError, ValueError):
        summary = {}
    recorded = summary.get("higher_is_better") if isinstance(summary, dict) else None
    table = dict(HIGHER_IS_BETTER)  # built-in scores a folder scored earlier may not record
    if isinstance(recorded, dict):
        table.update({str(k): v for k, v in recorded.items() if isinstance(v, bool)})
    return table


def higher_is_better(metric: str, directions: Mapping[str, bool]) -> bool | None:
    """Whether a higher ``metric`` is better (``cer_micro`` as ``cer``); None when unknown."""
    return direction_of(metric, directions)
