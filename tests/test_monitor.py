"""ResourceMonitor on real processes: psutil figures, the no-NVML path, the Parquet file.

Everything here is real: subprocesses that allocate known amounts of memory, and the real
``pynvml``, whose ``nvmlInit`` raises ``NVMLError_LibraryNotFound`` on this GPU-less machine.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pynvml
import pytest

from vlmhb.monitor import ResourceMonitor

# A parent holding 200 MiB, its child 100 MiB (bytes * n writes every page, so it is resident).
# Both hold their memory, the parent busy, until the test writes a line to the parent's stdin:
# however loaded the machine, the monitor sees the whole tree at its peak before it ends.
TREE_SCRIPT = textwrap.dedent(
    """
    import select, subprocess, sys
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; b = b'x' * (100 * 2**20); print('ok', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    child.stdout.readline()
    b = b"x" * (200 * 2**20)
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:  # busy: CPU % shows
        pass
    child.stdin.close()
    child.wait()
    """
)
IDLE_SCRIPT = "import subprocess, sys; sys.stdin.readline()"


def _interpreter_rss_mb() -> float:
    """The resident size of an idle interpreter that imported what the tree imports."""
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", IDLE_SCRIPT], stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        return psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.kill()
        proc.wait()


def _no_nvml_here() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return True
    pynvml.nvmlShutdown()
    return False


def test_process_tree_memory_cpu_and_exit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vlmhb.monitor")
    interpreter_mb = _interpreter_rss_mb()
    proc = subprocess.Popen(
        [sys.executable, "-c", TREE_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    monitor = ResourceMonitor(proc.pid, gpus=[], interval_s=0.05, refresh_s=0.2)
    monitor.start()
    live: dict = {}
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60  # a loaded machine may tick late, never skip the peak
        held_since = time.monotonic()
        while time.monotonic() < deadline:
            live = monitor.snapshot()
            if (live["rss_mb"] or 0) >= 300 and time.monotonic() - held_since >= 1.0:
                break
            time.sleep(0.05)
        proc.stdin.write("done\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
        time.sleep(0.3)  # a few ticks after the tree has exited: not an error
    finally:
        monitor.stop()
        proc.kill()
    frame = monitor.frame()
    summary = monitor.summary()

    # 300 MiB allocated + two interpreters, each measured idle above (+ slack for the pipes)
    assert 300 <= summary["rss_peak_mb"] <= 300 + 2 * interpreter_mb + 25
    assert summary["threads_peak"] >= 2
    assert frame["cpu_pct"].max() > 10  # the parent spins for at least a second
    assert frame["rss_mb"].iloc[-1:].isna().all()  # the tree is gone
    assert live["rss_mb"] is not None and live["vram_mb"] is None
    assert list(frame.columns) == ["t", "rss_mb", "cpu_pct", "threads", "host_ram_used_mb"]
    assert frame["t"].is_monotonic_increasing
    assert frame["t"].diff().median() >= 0.04  # not faster than asked; slower under load is fine
    assert summary["samples"] == len(frame) >= 5
    assert summary["gpu_status"] == "no GPU"  # gpus=[]: NVML is not even asked
    assert summary["vram_peak_mb"] is None and summary["energy_j"] is None
    assert summary["host_ram_peak_mb"] > summary["rss_peak_mb"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.skipif(not _no_nvml_here(), reason="NVML is present: test_monitor_gpu covers it")
def test_without_nvml_library_sampling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vlmhb.monitor")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        monitor = ResourceMonitor(proc.pid, interval_s=0.02)  # gpus from the environment
        monitor.start()
        time.sleep(0.3)
        monitor.stop()
    finally:
        proc.kill()
        proc.wait()
    summary = monitor.summary()
    assert summary["gpu_status"] == "no NVML library"
    assert summary["gpus"] == [] and summary["energy_j"] is None
    assert summary["samples"] >= 5 and summary["rss_peak_mb"] > 1
    assert summary["sampler_cpu_s"] > 0
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["GPU monitoring off: no NVML library"]  # said once, then silence


def test_missing_process_and_lifecycle_edges(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that no longer exists
    monitor = ResourceMonitor(proc.pid, gpus=[], interval_s=0.02)
    assert monitor.snapshot()["rss_mb"] is None and monitor.gpu_status == "not started"
    assert len(monitor.frame()) == 0
    monitor.stop()  # before start: nothing to do
    monitor.start()
    monitor.start()  # a second start does nothing
    time.sleep(0.1)
    monitor.stop()
    summary = monitor.summary()
    assert summary["samples"] >= 2
    assert summary["rss_peak_mb"] is None
    assert summary["host_ram_peak_mb"] > 0
    with pytest.raises(ValueError):
        ResourceMonitor(1, interval_s=0)


def test_parquet_round_trip_with_metadata(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        monitor = ResourceMonitor(proc.pid, gpus=[], interval_s=0.02)
        monitor.start()
        time.sleep(0.2)
        monitor.stop()
    finally:
        proc.kill()
        proc.wait()
    path = monitor.write(tmp_path / "custom.parquet")
    assert path == tmp_path / "custom.parquet"
    assert not list(tmp_path.glob("*.partial"))
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, monitor.frame())
    meta = json.loads(pq.read_schema(path).metadata[b"vlmhb"])
    assert meta["version"] == 1 and meta["interval_s"] == 0.02
    assert meta["gpu_status"] == "no GPU" and meta["gpus"] == []
    assert monitor.write(tmp_path) == tmp_path / "resources.parquet"
