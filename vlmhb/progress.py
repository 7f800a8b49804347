"""Live progress on stderr: samples/s, ETA, and live VRAM/RSS; silent when not a TTY."""

from __future__ import annotations

import sys
import time
from typing import Any


class RunProgress:
    """A progress bar for one run; a no-op unless stderr is a terminal."""

    def __init__(self, label: str, total: int, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label = label
        self.total = total
        self._progress: Any = None
        self._task: Any = None
        self._monitor: Any = None
        self._last_stats = 0.0

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[resources]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.label, total=self.total, rate="", resources=""
            )
            self._started = time.monotonic()
        return self

    def watch(self, monitor: Any) -> None:
        """Show this resource monitor's latest figures next to the bar."""
        self._monitor = monitor

    def advance(self, _answer: dict[str, Any] | None = None) -> None:
        """One more sample answered."""
        if self._progress is None:
            return
        self._progress.advance(self._task)
        now = time.monotonic()
        if now - self._last_stats < 0.5:
            return
        self._last_stats = now
        done = self._progress.tasks[0].completed
        rate = f"{done / max(now - self._started, 1e-9):.1f} samples/s"
        resources = ""
        if self._monitor is not None:
            snap = self._monitor.snapshot()
            if snap.get("vram_mb") is not None:
                resources += f"VRAM {snap['vram_mb']:.0f} MB "
            if snap.get("rss_mb") is not None:
                resources += f"RSS {snap['rss_mb']:.0f} MB"
        self._progress.update(self._task, rate=rate, resources=resources)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
