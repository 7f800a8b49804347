"""The monitor's scripts run here: the GPU check ends with a clean "no GPU", the benchmark runs.

``scripts/nvml_check.py`` does its real work only on a machine with a CUDA GPU; here it must
say why it cannot check (exit 2), without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/root/.pyenv/versions/3.11.7/bin/python3")


def run(python: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_nvml_check_says_no_gpu_here() -> None:
    done = run(sys.executable, "scripts/nvml_check.py")
    assert done.returncode == 2, done.stderr
    assert "no GPU: torch does not import" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_nvml_check_names_missing_monitor_packages() -> None:
    python = SYSTEM_PYTHON if SYSTEM_PYTHON.exists() else Path("/usr/bin/python3")
    has = run(python, "-c", "import psutil, pandas")
    assert has.returncode != 0, f"{python} has psutil and pandas: this test needs one without"
    done = run(python, "scripts/nvml_check.py")
    assert done.returncode == 2
    assert "cannot check: vlmhb.monitor needs psutil" in done.stderr
    assert "Traceback" not in done.stderr


def test_overhead_benchmark_runs() -> None:
    done = run(sys.executable, "benchmarks/monitor.py", "--seconds", "0.5")
    assert done.returncode in (0, 1), done.stderr  # 1 = over the 1 % target
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert report["samples"] >= 1  # the monitor always ticks once, even on a busy machine
    assert report["interval_s"] == 0.1 and report["seconds"] == 0.5
    assert "sampler overhead at 10 Hz" in done.stdout


STAND_IN_TORCH_PYTHON = """\
import json, sys, time
if "is_available" in sys.argv[2]:  # the probe
    print(json.dumps({"torch": "stand-in", "cuda": True, "count": 1}))
    raise SystemExit
held = b"x" * (60 * 2**20)
print(json.dumps({"event": "loaded"}), flush=True)
time.sleep(float(sys.argv[4]))
print(json.dumps({"event": "done", "device": "stand-in", "matmuls": 0}), flush=True)
"""


def test_nvml_check_runs_its_workload_flow_with_a_stand_in_worker(tmp_path: Path) -> None:
    """No CUDA torch here: a stand-in interpreter answers the probe and holds host memory.

    The whole flow runs (probe, worker, monitor, JSON result); without NVML the GPU checks
    fail, so the script must exit 1 and say why.
    """
    fake = tmp_path / "torch-python"
    fake.write_text(f"#!{sys.executable}\n{STAND_IN_TORCH_PYTHON}")
    fake.chmod(0o755)
    done = run(
        sys.executable, "scripts/nvml_check.py", "--seconds", "0.6", "--worker-python", str(fake)
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["worker"]["device"] == "stand-in"
    assert result["summary"]["rss_peak_mb"] >= 60
    assert result["checks"]["worker_exit"] == 0
    assert result["checks"]["vram_peak_mb>0"] is False and result["checks"]["energy_j>0"] is False
    assert "FAILED: gpu_status='no NVML library'" in done.stderr
    assert "Traceback" not in done.stderr
