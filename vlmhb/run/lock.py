"""One writer per run folder: a file lock held while a process infers or scores a run.

Two ``vlmhb run`` processes of one plan (or two plan rows with one run id under ``--jobs``)
would otherwise both append to ``answers.jsonl`` and race on its temporary files. The lock
is an OS file lock (``filelock``), so it is released when its holder exits, even by
``kill -9``. A second writer does not wait: it stops at once, naming who holds the folder.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from vlmhb.errors import VlmhbError
from vlmhb.run.files import WRITER_LOCK, WRITER_OWNER


class RunBusyError(VlmhbError):
    """Another process is writing this run folder."""

    def __init__(self, run_dir: Path, owner: str) -> None:
        self.run_dir = run_dir
        super().__init__(
            f"{run_dir}: another vlmhb process is writing this run ({owner}); "
            "not touching it: wait for it to end, or stop it, and run again"
        )


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's writer lock for the block; ``RunBusyError`` if someone else has it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / WRITER_LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunBusyError(run_dir, _owner(run_dir)) from None
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        (run_dir / WRITER_OWNER).write_text(json.dumps(owner), encoding="utf-8")
        yield
    finally:
        lock.release()


def _owner(run_dir: Path) -> str:
    try:
        owner = json.loads((run_dir / WRITER_OWNER).read_text(encoding="utf-8"))
        since = time.strftime("%H:%M:%S", time.localtime(float(owner["since"])))
        return f"pid {owner['pid']} on {owner['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"
