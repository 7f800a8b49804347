"""The worker never outlives the orchestrator, nor does anything the worker started.

The orchestrator starts each worker in a session of its own (``WorkerProcess``), so the
worker leads a process group holding whatever it spawns (an engine's helpers, Tesseract).
Three things end that group when the orchestrator is gone, even after ``kill -9``:

* the kernel's parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``), sent the
  moment the parent dies;
* a SIGTERM handler that kills the whole group rather than the worker alone;
* a watchdog thread that polls the parent pid, for systems without ``prctl`` and for the
  case where the signal cannot be delivered.

Standard library only: this runs inside model envs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from types import FrameType

PR_SET_PDEATHSIG = 1
POLL_S = 0.5


def end_process_group() -> None:
    """Kill this worker's process group if it leads one, else this process alone."""
    with contextlib.suppress(OSError):
        sys.stderr.write("[vlmhb worker] stopping: the orchestrator is gone or asked to stop\n")
        sys.stderr.flush()
    if os.getpgrp() == os.getpid():  # started in its own session: the group is ours alone
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(143)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    end_process_group()


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:
            end_process_group()


def start_watchdog() -> None:
    """Arm all three; call once, first thing in the worker's main thread."""
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _on_sigterm)
    _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the signal was armed
        end_process_group()
    threading.Thread(target=_watch, args=(parent,), name="vlmhb-watchdog", daemon=True).start()
