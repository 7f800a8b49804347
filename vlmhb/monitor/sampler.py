"""``ResourceMonitor``: samples a worker's process tree and GPUs from a daemon thread.

The runner creates one per worker, calls ``start()`` once the worker's pid is known, reads
``snapshot()`` for its live display, calls ``stop()`` at the end, then ``write(run_dir)`` and
``summary()``. Everything slow (importing and initialising NVML, NVML queries, listing the
children) happens on the sampling thread; the runner's calls only copy what is stored.
Monitoring never fails a run: a missing NVML library, no GPU or a lost GPU is recorded once
(``gpu_status`` and one log line) and the thread keeps reading what it can.

Samples are kept as one ``array('d')`` per column (NaN = unknown): 8 bytes a value, so a
ten-hour run at 10 Hz with one GPU holds about 30 MB.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmhb.monitor.gpu import GpuReader, import_nvml, parse_visible_devices
from vlmhb.monitor.process import ProcessTree
from vlmhb.monitor.summary import summarize_frame
from vlmhb.run.files import RESOURCES

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

RESOURCES_FILE = RESOURCES
RESOURCES_VERSION = 1
BASE_COLUMNS = ("t", "rss_mb", "cpu_pct", "threads", "host_ram_used_mb")
_NOT_STARTED = "not started"
_USE_PYNVML = object()


class ResourceMonitor:
    """Samples one worker (pid and descendants) and the GPUs it sees, every ``interval_s``."""

    def __init__(
        self,
        pid: int,
        gpus: Sequence[int] | None = None,
        interval_s: float = 0.1,
        *,
        refresh_s: float = 1.0,
        slow_every_s: float = 0.5,
        energy_every_s: float = 1.0,
        nvml: Any = _USE_PYNVML,
    ) -> None:
        """Watch ``pid``; ``gpus`` are NVML indices (None: from ``CUDA_VISIBLE_DEVICES``,
        all GPUs where it is unset). The worker's children are listed again every
        ``refresh_s``; GPU utilization and per-process GPU memory are read every
        ``slow_every_s`` (costly NVML calls on slowly changing values; 0 = every tick), and
        the cumulative energy counter every ``energy_every_s`` and once more at the end.
        ``nvml`` replaces the ``pynvml`` module (tests only).

        NVML numbers GPUs in PCI bus order, as CUDA does with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.
        """
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.pid = pid
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        self.slow_every_s = slow_every_s
        self.energy_every_s = energy_every_s
        self._devices: list[int | str] | None = (
            parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
            if gpus is None
            else list(gpus)
        )
        self._nvml = nvml
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._columns: dict[str, array] = {name: array("d") for name in BASE_COLUMNS}
        self._gpu_indices: list[int] = []
        self._gpu_status = _NOT_STARTED
        self._energy_sources: dict[int, str | None] = {}
        self._thread_cpu_s = 0.0
        self._setup_cpu_s = 0.0
        self._start_unix: float | None = None
        self._failed: set[str] = set()

    def start(self) -> None:
        """Start sampling on a daemon thread (returns at once; a second call does nothing)."""
        if self._thread is not None:
            return
        self._start_unix = time.time()
        self._thread = threading.Thread(target=self._run, name="vlmhb-monitor", daemon=True)
        self._thread.start()

    def follow(self, pid: int) -> None:
        """Watch another process from the next tick on (a restarted worker): the time series,
        the GPU readings and the cumulative energy go on uninterrupted."""
        with self._lock:
            self.pid = pid

    def stop(self) -> None:
        """Stop sampling and wait (a few seconds at most) for the thread to finish."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=max(5.0, 10 * self.interval_s))
            if self._thread.is_alive():
                log.warning("resource monitor thread still busy after stop(); left behind")

    def snapshot(self) -> dict[str, Any]:
        """Latest values for a live display (None where unknown).

        ``rss_mb``, ``cpu_pct``; ``vram_mb`` sums device memory in use over the GPUs;
        ``gpu_util`` is their mean SM %.
        """
        with self._lock:
            last = {name: col[-1] for name, col in self._columns.items() if len(col)}
            gpus = list(self._gpu_indices)
            status = self._gpu_status
        vram = [last.get(f"gpu{i}_mem_used_mb", math.nan) for i in gpus]
        util = [last.get(f"gpu{i}_sm_util", math.nan) for i in gpus]
        vram_known = [v for v in vram if not math.isnan(v)]
        util_known = [u for u in util if not math.isnan(u)]
        return {
            "t": _or_none(last.get("t")),
            "rss_mb": _or_none(last.get("rss_mb")),
            "cpu_pct": _or_none(last.get("cpu_pct")),
            "vram_mb": sum(vram_known) if vram_known else None,
            "gpu_util": sum(util_known) / len(util_known) if util_known else None,
            "gpu_status": status,
        }

    def frame(self) -> pd.DataFrame:
        """The time series so far: ``t`` (s since start), host columns, ``gpu{i}_*`` columns."""
        import numpy as np
        import pandas as pd

        with self._lock:
            data = {name: np.array(col, dtype=float) for name, col in self._columns.items()}
        return pd.DataFrame(data)

    def write(self, path: Path) -> Path:
        """Write the time series as Parquet (into ``path/resources.parquet`` if ``path`` is a
        folder); the file's metadata carries the version, interval and GPU status."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = Path(path)
        if target.is_dir():
            target = target / RESOURCES_FILE
        table = pa.Table.from_pandas(self.frame(), preserve_index=False)
        meta = {
            "version": RESOURCES_VERSION,
            "interval_s": self.interval_s,
            "gpu_status": self.gpu_status,
            "gpus": self.gpu_indices,
            "start_unix": self._start_unix,
        }
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"vlmhb": json.dumps(meta).encode()}
        )
        partial = target.with_name(target.name + ".partial")
        pq.write_table(table, partial)
        os.replace(partial, target)
        return target

    def summary(self) -> dict[str, Any]:
        """Peak/mean RSS and VRAM, mean SM util, energy, GPU status, sample count (for run.json)."""
        with self._lock:
            sources = dict(self._energy_sources)
        summary = summarize_frame(
            self.frame(),
            interval_s=self.interval_s,
            gpu_status=self.gpu_status,
            energy_sources=sources,
        )
        summary["start_unix"] = self._start_unix
        summary["sampler_cpu_s"] = self._thread_cpu_s
        summary["sampler_setup_cpu_s"] = self._setup_cpu_s
        return summary

    @property
    def gpu_status(self) -> str:
        """``ok``, ``no NVML library``, ``no GPU …``, ``GPU lost at t=…`` or ``not started``."""
        with self._lock:
            return self._gpu_status

    @property
    def gpu_indices(self) -> list[int]:
        """NVML indices of the GPUs being sampled (known once the thread has started)."""
        with self._lock:
            return list(self._gpu_indices)

    def _run(self) -> None:
        """Thread body: open the readers, then one tick every ``interval_s`` until stopped."""
        start = time.monotonic()
        reader: GpuReader | None = None
        try:
            tree = ProcessTree(self.pid, self.refresh_s)
            nvml = import_nvml() if self._nvml is _USE_PYNVML else self._nvml
            reader = GpuReader(
                nvml,
                self._devices,
                slow_every_s=self.slow_every_s,
                energy_every_s=self.energy_every_s,
            )
            with self._lock:
                self._gpu_indices = reader.indices
                self._gpu_status = reader.status
                for name in reader.columns:
                    self._columns[name] = array("d")
            self._setup_cpu_s = time.thread_time()  # importing and initialising NVML
            next_tick = start
            stopped = False
            while not stopped:  # at least one tick, even when stopped during the setup
                with self._lock:
                    pid = self.pid
                if pid != tree.pid:
                    tree = ProcessTree(pid, self.refresh_s)
                self._tick(tree, reader, time.monotonic() - start)
                self._thread_cpu_s = time.thread_time()
                next_tick += self.interval_s
                now = time.monotonic()
                if next_tick < now:  # fell behind (a slow NVML call): skip the lost ticks
                    next_tick = now
                stopped = self._stop.wait(next_tick - now)
            self._tick(tree, reader, time.monotonic() - start, final=True)
            self._thread_cpu_s = time.thread_time()
        except Exception:
            log.exception("resource monitor stopped by an unexpected error")
        finally:
            if reader is not None:
                reader.close()
            self._thread_cpu_s = time.thread_time()

    def _tick(self, tree: ProcessTree, reader: GpuReader, t: float, final: bool = False) -> None:
        """Read the tree, then the GPUs; an unexpected failure of one leaves NaN, logged once."""
        row: dict[str, float] = {"t": t}
        pids: frozenset[int] = frozenset()
        try:
            host = tree.read()
            pids = host.pids
            row.update(
                rss_mb=host.rss_mb,
                cpu_pct=host.cpu_pct,
                threads=host.threads,
                host_ram_used_mb=host.host_ram_used_mb,
            )
        except Exception:
            self._log_failure("process", t)
        try:
            row.update(reader.read(t, pids, final))
        except Exception:
            self._log_failure("GPU", t)
        with self._lock:
            for name, column in self._columns.items():
                column.append(row.get(name, math.nan))
            self._gpu_status = reader.status
            self._energy_sources = reader.energy_sources()

    def _log_failure(self, what: str, t: float) -> None:
        if what not in self._failed:
            self._failed.add(what)
            log.exception("%s sample failed at t=%.1fs; sampling goes on", what, t)


def _or_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
