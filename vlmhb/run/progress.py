"""Live progress on stderr: one line per active run, a line per finished run.

One ``rich`` Progress shared by every run thread (its methods take a lock). Each active run
has a line: label, GPUs, bar, done/total, samples/s, ETA, VRAM/RSS of its worker. When a run
ends its line is replaced by a one-line result printed above the live lines. Silent when
stderr is not a terminal (logs get the plain lines of ``cli_tables.print_outcome_line``).
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Tracker:
    """The progress line of one run; ``advance`` per answer, ``watch`` a resource monitor."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task
        self._monitor: Any = None
        self._started = time.monotonic()
        self._done = 0
        self._last = 0.0

    def watch(self, monitor: Any) -> None:
        """Show this resource monitor's latest figures on the line (the worker is ready)."""
        self._monitor = monitor
        if self._done == 0:
            self._progress.update(self._task, rate="model loaded, answering")

    def advance(self, _answer: dict[str, Any] | None = None) -> None:
        """One more sample answered."""
        self._done += 1
        self._progress.advance(self._task)
        now = time.monotonic()
        if now - self._last < 0.5:
            return
        self._last = now
        rate = f"{self._done / max(now - self._started, 1e-9):.1f}/s"
        resources = ""
        if self._monitor is not None:
            snap = self._monitor.snapshot()
            if snap.get("vram_mb") is not None:
                resources += f"VRAM {snap['vram_mb']:.0f} MB "
            if snap.get("rss_mb") is not None:
                resources += f"RSS {snap['rss_mb']:.0f} MB"
        self._progress.update(self._task, rate=rate, resources=resources)

    def close(self) -> None:
        """The run ended: drop its line."""
        self._progress.remove_task(self._task)


class Board:
    """All active runs' lines; a no-op unless enabled (default: stderr is a terminal)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Any = None

    def __enter__(self) -> Board:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                TextColumn("[dim]{task.fields[gpus]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[resources]}"),
                console=Console(stderr=True),
            )
            self._progress.start()
        return self

    def track(self, prepared: Any, devices: str | None) -> Tracker | None:
        """A line for a run that starts now."""
        if self._progress is None:
            return None
        where = "GPU" if prepared.run.gpu_count else "CPU"
        gpus = f"GPU {devices}" if devices else where
        task = self._progress.add_task(
            prepared.run.label,
            total=prepared.n_samples,
            gpus=gpus,
            rate="starting: env, model load",  # until the first answer: a long wait, named
            resources="",
        )
        return Tracker(self._progress, task)

    def print(self, text: str) -> None:
        """A line above the live view (a finished run)."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
