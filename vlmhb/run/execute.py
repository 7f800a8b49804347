"""Execute one prepared run's stages (infer, eval) and say how it ended.

This is what every executor calls for a run (row after row, the local GPU-slot scheduler,
a Slurm job): it lives below them, so no executor imports the public API.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vlmhb.errors import VlmhbError
from vlmhb.run.folder import ANSWERS, METRICS_DIR, OVERALL_CSV
from vlmhb.run.infer import infer_run
from vlmhb.run.lock import run_folder_lock
from vlmhb.run.prepare import PreparedRun
from vlmhb.run.secrets import mask, secret_values


class RunTracker(Protocol):
    """What shows one run's progress instead of its own bar (a line of the live board)."""

    def advance(self, answer: dict[str, Any] | None = None) -> None:
        """One more answer line was written."""

    def watch(self, monitor: Any) -> None:
        """The run's resource monitor started (``vlmhb.monitor.ResourceMonitor``)."""


@dataclass
class RunOutcome:
    """How one run of a plan ended."""

    prepared: PreparedRun
    status: str = "pending"  # done | failed | skipped | dry-run
    error: str | None = None
    wall_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    overall: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the run ended well."""
        return self.status in {"done", "dry-run"}


def read_overall(run_dir: Path) -> dict[str, float]:
    """``metrics/overall.csv`` of a run folder as {metric: value}; {} when not scored."""
    path = run_dir / METRICS_DIR / OVERALL_CSV
    if not path.exists():
        return {}
    import pandas as pd

    frame = pd.read_csv(path)
    return {
        str(row.metric): float(row.value) for row in frame.itertuples() if row.value == row.value
    }


def execute_run(
    prepared: PreparedRun,
    *,
    gpus: str | None = None,
    progress: bool | None = None,
    tracker: RunTracker | None = None,
) -> RunOutcome:
    """Run the stages of one prepared run; a failure is recorded, not raised.

    ``gpus`` becomes the worker's ``CUDA_VISIBLE_DEVICES`` (None: inherited). ``tracker``
    (an object with ``advance(answer)`` and ``watch(monitor)``, e.g. a line of the
    scheduler's live board) replaces the run's own progress bar.
    """
    from vlmhb.run.evaluate import evaluate_run
    from vlmhb.run.progress import Board

    outcome = RunOutcome(prepared)
    started = time.monotonic()
    stages = prepared.run.stages
    held = contextlib.ExitStack()
    try:
        held.enter_context(run_folder_lock(prepared.run_dir))  # one writer per run folder
        if "infer" in stages:
            with Board(False if tracker else progress) as board:
                shown = tracker or board.track(prepared, gpus)
                record = infer_run(
                    prepared,
                    gpus=gpus,
                    on_answer=shown.advance if shown else None,
                    on_monitor=shown.watch if shown else None,
                )
            outcome.counts = dict(record.counts)
        if "eval" in stages:
            if not (prepared.run_dir / ANSWERS).exists():
                raise VlmhbError(f"{prepared.run_dir}: no answers to evaluate; run infer first")
            evaluate_run(
                prepared.run_dir,
                metrics=list(prepared.run.metrics) or None,
                isolation=prepared.isolation,
            )
            outcome.overall = read_overall(prepared.run_dir)
        outcome.status = "done"
    except VlmhbError as exc:
        outcome.status, outcome.error = "failed", mask(str(exc), secret_values(prepared.run.load))
    finally:
        held.close()
    outcome.wall_s = time.monotonic() - started
    return outcome


class ExecuteRun(Protocol):
    """The signature of :func:`execute_run`, which the api hands to executors."""

    def __call__(
        self,
        prepared: PreparedRun,
        *,
        gpus: str | None = None,
        progress: bool | None = None,
        tracker: RunTracker | None = None,
    ) -> RunOutcome:
        """Run the stages of one prepared run."""
        ...
