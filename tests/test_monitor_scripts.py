"""The monitor's scripts run here: the GPU check says why it cannot check, the benchmark runs.

``scripts/nvml_check.py`` does its real work only where its worker interpreter has a CUDA
torch. These tests hand it interpreters made for the purpose (a stand-in "python" without
torch, a bare venv without the monitor's packages), so they hold on any machine, with or
without a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NO_TORCH_PYTHON = """import sys
print("ModuleNotFoundError: No module named 'torch'", file=sys.stderr)
raise SystemExit(1)
"""


def run(python: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def stand_in(folder: Path, name: str, source: str) -> Path:
    """An executable "python" that runs ``source`` with this interpreter."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)
    return path


def test_nvml_check_says_when_its_worker_has_no_torch(tmp_path: Path) -> None:
    python = stand_in(tmp_path, "no-torch-python", NO_TORCH_PYTHON)
    done = run(sys.executable, "scripts/nvml_check.py", "--worker-python", str(python))
    assert done.returncode == 2, done.stderr
    assert f"no GPU: torch does not import in {python}: ModuleNotFoundError" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_nvml_check_names_missing_monitor_packages(tmp_path: Path) -> None:
    venv.create(tmp_path / "bare", with_pip=False)  # no psutil, numpy or pandas in it
    python = tmp_path / "bare" / "bin" / "python"
    done = run(python, "scripts/nvml_check.py")
    assert done.returncode == 2, done.stderr
    assert "cannot check: vlmhb.monitor needs psutil, numpy, pandas" in done.stderr
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
    """A stand-in interpreter answers the torch probe and holds host memory, not GPU memory.

    The whole flow runs (probe, worker, monitor, JSON result); the stand-in holds no device
    memory, so the VRAM check fails on any machine and the script must exit 1 and say why.
    """
    fake = stand_in(tmp_path, "torch-python", STAND_IN_TORCH_PYTHON)
    done = run(
        sys.executable, "scripts/nvml_check.py", "--seconds", "0.6", "--worker-python", str(fake)
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["worker"]["device"] == "stand-in"
    assert result["summary"]["rss_peak_mb"] >= 60
    assert result["checks"]["worker_exit"] == 0
    assert result["checks"]["vram_rise_covers_held"] is False
    assert f"FAILED: gpu_status={result['summary']['gpu_status']!r}" in done.stderr
    assert "Traceback" not in done.stderr
