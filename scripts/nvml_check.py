"""Check vlmhb's resource monitor against real NVML on a machine with a CUDA GPU.

Starts a worker subprocess that holds ~2 GiB on the GPU (torch) and runs fp16 matmuls for ~5 s,
watches it with ``vlmhb.monitor.ResourceMonitor`` at 10 Hz, and prints the resource summary as
JSON with the worker's own view (torch's peak allocation, device name). Exit status:

* 0: peak VRAM > 0 and energy > 0, both read through NVML;
* 1: the GPU ran but the monitor could not show it (e.g. ``pynvml`` missing: then
  ``nvidia-smi``, where present, is queried once during the load, as a fallback witness);
* 2: nothing to check here: no GPU, no CUDA torch, or the monitor's own packages missing.

Run from the repository root with an interpreter that has psutil, numpy and pandas
(nvidia-ml-py for NVML); ``--worker-python`` names the one with CUDA torch if it differs::

    python scripts/nvml_check.py [--gib 2] [--seconds 5] [--worker-python PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CANNOT_CHECK, FAILED = 2, 1

WORKLOAD = r"""
import json, sys, time
gib, seconds = float(sys.argv[1]), float(sys.argv[2])
import torch
hold = torch.ones(int(gib * 2**30), dtype=torch.uint8, device="cuda")
a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
b = torch.randn_like(a)
torch.cuda.synchronize()
print(json.dumps({"event": "loaded"}), flush=True)
start, n = time.monotonic(), 0
while time.monotonic() - start < seconds:
    for _ in range(10):
        c = a @ b
    torch.cuda.synchronize()
    n += 10
took = time.monotonic() - start
print(json.dumps({
    "event": "done", "device": torch.cuda.get_device_name(), "matmuls": n, "seconds": took,
    "tflops": 2 * 8192**3 * n / took / 1e12,
    "torch_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
}), flush=True)
"""

PROBE = (
    "import json, torch; print(json.dumps({'torch': torch.__version__, "
    "'cuda': torch.cuda.is_available(), 'count': torch.cuda.device_count()}))"
)


def say(message: str) -> None:
    """One line on stderr (stdout carries only the JSON result)."""
    print(f"nvml_check: {message}", file=sys.stderr, flush=True)


def probe_torch(python: str) -> dict[str, Any]:
    """What the worker interpreter's torch sees, or why there is none."""
    try:
        done = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"cuda": False, "why": f"cannot run {python}: {exc}"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"cuda": False, "why": f"torch does not import in {python}: {last}"}
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if not found["cuda"]:
        found["why"] = f"torch {found['torch']} sees no CUDA device"
    return found


def nvidia_smi() -> str | None:
    """One ``nvidia-smi`` reading (index, name, memory used, power), where the tool exists."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    query = "--query-gpu=index,name,memory.used,power.draw"
    done = subprocess.run(
        [tool, query, "--format=csv"], capture_output=True, text=True, timeout=30, check=False
    )
    return (done.stdout or done.stderr).strip()


def vram_rise_mb(frame: Any) -> float | None:
    """Device memory in use (summed over GPUs): peak minus the first known tick."""
    columns = [c for c in frame.columns if c.endswith("_mem_used_mb")]
    used = frame[columns].sum(axis=1, min_count=1).dropna() if columns else None
    if used is None or used.empty:
        return None
    return float(used.max() - used.iloc[0])


def main() -> int:
    """Run the workload under the monitor; print the JSON result; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="GPU memory to hold")
    parser.add_argument("--seconds", type=float, default=5.0, help="matmul time")
    parser.add_argument("--worker-python", default=sys.executable, help="interpreter with torch")
    parser.add_argument(
        "--slow-every-s",
        type=float,
        default=0.5,
        help="how often utilization and the GPU process list are read (0 = every tick)",
    )
    parser.add_argument(
        "--energy-every-s",
        type=float,
        default=1.0,
        help="how often the energy counter (a costly query) is read (0 = every tick)",
    )
    args = parser.parse_args()

    missing = [m for m in ("psutil", "numpy", "pandas") if importlib.util.find_spec(m) is None]
    if missing:
        say(f"cannot check: vlmhb.monitor needs {', '.join(missing)}, missing in {sys.executable}")
        return CANNOT_CHECK
    from vlmhb import monitor
    from vlmhb.monitor.gpu import nvml_status

    has_pynvml = importlib.util.find_spec("pynvml") is not None
    if not has_pynvml:
        say(
            "pynvml (nvidia-ml-py) is not installed: the monitor cannot read the GPU; "
            "carrying on with psutil only and nvidia-smi as a witness"
        )
    status, names = nvml_status(), monitor.gpu_names()
    say(f"NVML: {status}; GPUs: {names}")
    torch_info = probe_torch(args.worker_python)
    if not torch_info["cuda"]:
        say(f"no GPU: {torch_info['why']}; NVML: {status}. Nothing to check here.")
        return CANNOT_CHECK

    worker = subprocess.Popen(
        [args.worker_python, "-c", WORKLOAD, str(args.gib), str(args.seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    resources = monitor.ResourceMonitor(
        worker.pid,
        gpus=None,
        interval_s=0.1,
        slow_every_s=args.slow_every_s,
        energy_every_s=args.energy_every_s,
    )
    resources.start()
    events: dict[str, Any] = {}
    smi = None
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            event = json.loads(line)
            events[event["event"]] = event
            if event["event"] == "loaded":
                time.sleep(min(1.0, args.seconds / 2))
                smi = nvidia_smi()
        worker.wait(timeout=120)
    finally:
        time.sleep(0.3)
        resources.stop()
        if worker.poll() is None:
            worker.kill()
    summary = resources.summary()
    duration = summary["duration_s"] or 0.0
    rise = vram_rise_mb(resources.frame())
    checks = {
        "worker_exit": worker.returncode,
        "vram_peak_mb>0": bool(summary["vram_peak_mb"] and summary["vram_peak_mb"] > 0),
        "energy_j>0": bool(summary["energy_j"] and summary["energy_j"] > 0),
        # device memory, peak minus the first tick (before torch allocated): the held GiB show
        "vram_rise_mb": rise,
        "vram_rise_covers_held": rise is not None and rise >= 0.9 * args.gib * 1024,
        "sampler_pct_of_core": 100 * summary["sampler_cpu_s"] / duration if duration else None,
    }
    result = {
        "summary": summary,
        "worker": events.get("done"),
        "torch": torch_info,
        "nvml_gpus": names,
        "nvidia_smi": smi,
        "checks": checks,
    }
    print(json.dumps(result, indent=2))
    passed = ("vram_peak_mb>0", "energy_j>0", "vram_rise_covers_held")
    if worker.returncode == 0 and all(checks[name] for name in passed):
        say(f"OK: peak VRAM {summary['vram_peak_mb']:.0f} MiB, energy {summary['energy_j']:.1f} J")
        return 0
    say(f"FAILED: gpu_status={summary['gpu_status']!r}, worker exit {worker.returncode}")
    return FAILED


if __name__ == "__main__":
    raise SystemExit(main())
