"""Overhead of the resource sampler: CPU it uses at 10 Hz, as a percentage of one core.

Watches a stand-in worker (a sleeping Python process with two children) for ``--seconds``,
once without a monitor (the idle baseline of this process) and once with
``ResourceMonitor(interval_s=--interval)``. Reports the sampling thread's own CPU time
(``time.thread_time`` inside the thread) and the difference in this process's CPU time
against the baseline, both over wall time. Target: under 1 % of one core.

    .venv/bin/python benchmarks/monitor.py --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vlmhb.monitor import ResourceMonitor

WORKER = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)]
time.sleep(600)
"""


def measure(pid: int, seconds: float, interval_s: float | None) -> dict[str, float]:
    """CPU time of this process over ``seconds`` of wall time, with or without a monitor."""
    monitor = ResourceMonitor(pid, interval_s=interval_s) if interval_s else None
    cpu0, wall0 = time.process_time(), time.monotonic()
    if monitor:
        monitor.start()
    time.sleep(seconds)
    if monitor:
        monitor.stop()
    wall = time.monotonic() - wall0
    result = {"wall_s": wall, "process_cpu_s": time.process_time() - cpu0}
    if monitor:
        summary = monitor.summary()
        result.update(
            thread_cpu_s=summary["sampler_cpu_s"],
            setup_cpu_s=summary["sampler_setup_cpu_s"],
            samples=summary["samples"],
            gpu_status=summary["gpu_status"],
        )
    return result


def main() -> int:
    """Run the baseline and the monitored window; print the overhead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()

    worker = subprocess.Popen([sys.executable, "-c", WORKER], start_new_session=True)
    try:
        time.sleep(1.0)  # let the children start
        idle = measure(worker.pid, args.seconds, None)
        watched = measure(worker.pid, args.seconds, args.interval)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its children
        worker.wait()
    wall, thread_cpu, setup = watched["wall_s"], watched["thread_cpu_s"], watched["setup_cpu_s"]
    steady_pct = 100 * (thread_cpu - setup) / wall
    thread_pct = 100 * thread_cpu / wall
    extra_cpu = watched["process_cpu_s"] - idle["process_cpu_s"] * wall / idle["wall_s"]
    report = {
        "interval_s": args.interval,
        "seconds": args.seconds,
        "samples": watched["samples"],
        "gpu_status": watched["gpu_status"],
        "setup_ms": 1000 * setup,
        "per_sample_ms": 1000 * (thread_cpu - setup) / max(watched["samples"], 1),
        "steady_pct_of_core": steady_pct,
        "thread_pct_of_core_with_setup": thread_pct,
        "process_extra_pct_of_core": 100 * extra_cpu / wall,
    }
    print(json.dumps(report, indent=2))
    print(
        f"sampler overhead at {1 / args.interval:g} Hz: {steady_pct:.2f} % of one core "
        f"(sampling thread, steady state; {thread_pct:.2f} % counting the one-off NVML "
        f"import/init of {1000 * setup:.0f} ms); target < 1 %"
    )
    return 0 if steady_pct < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
