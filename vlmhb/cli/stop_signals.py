"""SIGTERM and SIGHUP handled like Ctrl-C: a pod stopped or a terminal closed keeps its answers.

The handler raises ``Terminated`` (a ``KeyboardInterrupt``), so every path that already
handles Ctrl-C (the runner marks run.json ``interrupted`` and stops its worker, the local
scheduler interrupts every run thread, Slurm cancels its elements) handles these too. The
command then exits 128 + the signal number (143, 129), as a shell reports it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than SIGINT."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by this signal."""
        return 128 + self.signum


def _stop(signum: int, frame: FrameType | None) -> None:
    for other in STOP_SIGNALS:  # one stop is enough; a repeat must not cut the clean-up short
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def handle_stop_signals() -> None:
    """Route SIGTERM and SIGHUP to ``Terminated`` (only the main thread may set handlers)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _stop)
