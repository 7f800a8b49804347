"""The metrics stage, seen from the orchestrator: score a run folder in the metrics env.

Scoring runs as ``python -m vlmhb.metrics RUN_DIR`` in a child process, in the ``metrics``
venv under ``venv`` isolation (or this interpreter under ``local``), so heavy metric
dependencies never touch the orchestrator's environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from vlmhb.errors import VlmhbError
from vlmhb.run.files import METRICS_DIR, METRICS_JSON
from vlmhb.run.isolation import child_python

METRICS_ENV = "metrics"


class MetricsError(VlmhbError):
    """The metrics stage failed for a run folder."""


def evaluate_run(
    run_dir: Path,
    *,
    metrics: list[str] | None = None,
    isolation: str = "local",
    extra_args: list[str] | None = None,
) -> dict:
    """Score ``run_dir`` again from its saved answers; returns ``metrics/metrics.json``."""
    python = child_python(isolation, METRICS_ENV)
    argv = [str(python.python), "-m", "vlmhb.metrics", str(run_dir.resolve())]
    if metrics:
        argv += ["--metrics", ",".join(metrics)]
    argv += extra_args or []
    result = subprocess.run(
        argv, env=python.environment(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise MetricsError(f"{run_dir}: metrics stage failed: {' | '.join(tail)}")
    summary_path = run_dir / METRICS_DIR / METRICS_JSON
    return json.loads(summary_path.read_text("utf-8")) if summary_path.exists() else {}
