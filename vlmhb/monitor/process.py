"""Host-side readings of the worker's process tree through psutil.

``ProcessTree.read()`` sums RSS, CPU % and threads over the worker and its descendants (RSS of
shared pages is counted once per process, as ``ps`` would). The list of descendants is refreshed
at most once a ``refresh_s`` (listing children reads every ``/proc/*/stat``, the costliest part
of a tick); the processes already known are read on every tick. A process that exits between
two reads simply drops out; when the whole tree is gone its columns are NaN.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import psutil

MB = 2**20
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


@dataclass(frozen=True)
class TreeReading:
    """One reading of the worker's process tree and of the host."""

    rss_mb: float
    cpu_pct: float
    threads: float
    host_ram_used_mb: float
    pids: frozenset[int] = field(default_factory=frozenset)


def host_ram_used_mb() -> float:
    """Host memory in use: total minus what the kernel says is available, in MiB."""
    memory = psutil.virtual_memory()
    return (memory.total - memory.available) / MB


class ProcessTree:
    """The worker process and its descendants, read on each tick."""

    def __init__(self, pid: int, refresh_s: float = 1.0) -> None:
        """Watch ``pid`` and its children; ``refresh_s`` bounds how often children are listed."""
        self.pid = pid
        self.refresh_s = refresh_s
        self._known: dict[int, psutil.Process] = {}
        self._next_refresh = 0.0
        try:
            self._root: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._root = None

    def read(self) -> TreeReading:
        """Sum RSS (MiB), CPU % (100 = one core) and threads over the live tree."""
        self._refresh()
        rss = cpu = threads = 0.0
        alive: set[int] = set()
        for pid, process in list(self._known.items()):
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    cpu += process.cpu_percent()
                    threads += process.num_threads()
                alive.add(pid)
            except _GONE:
                del self._known[pid]
        host = host_ram_used_mb()
        if not alive:
            return TreeReading(math.nan, math.nan, math.nan, host)
        return TreeReading(rss / MB, cpu, threads, host, frozenset(alive))

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._root is None or now < self._next_refresh:
            return
        self._next_refresh = now + self.refresh_s
        try:
            found = [self._root, *self._root.children(recursive=True)]
        except _GONE:
            found = []
            if not self._root.is_running():
                self._root = None
        for process in found:
            # Keep the Process objects already known: cpu_percent() measures since the last call.
            self._known.setdefault(process.pid, process)
