"""Isolation is real: model and metrics envs are separate venvs that see vlmhb's code only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_dataset

from vlmhb import api
from vlmhb.run.child_env import child_environment
from vlmhb.run.isolation import child_python

WORKER_SIDE = [
    "vlmhb",
    "vlmhb.errors",
    "vlmhb.validity",
    "vlmhb.worker.protocol",
    "vlmhb.worker.loop",
    "vlmhb.worker.lines",
    "vlmhb.worker.backends",
    "vlmhb.worker.backends.base",
    "vlmhb.worker.backends.echo",
    "vlmhb.worker.backends.chat",
    "vlmhb.worker.backends.tesseract",
    "vlmhb.worker.backends.hf",
    "vlmhb.worker.backends.vllm",
    "vlmhb.worker.backends.sglang",
    "vlmhb.worker.backends.openai",
    "vlmhb.worker.backends.ocr_fields",
    "vlmhb.worker.backends.openai_stream",
    "vlmhb.worker.backends.server",
    "vlmhb.worker.backends.serve_shim",
    "vlmhb.worker.backends.served",
    # stdlib-only modules read on both sides of the venv boundary, or by scripts under a
    # model env's Python
    "vlmhb.form_labels",
    "vlmhb.run.files",
    "vlmhb.run.code_shim",
    "vlmhb.run.child_env",
    "vlmhb.run.worker_process",
    "vlmhb.metrics._registry",
]
ORCHESTRATOR_PACKAGES = ("pandas", "pydantic", "click", "pyarrow", "rich", "psutil")


def _in(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code],
        env=child_environment(),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def echo_python() -> Path:
    return child_python("venv", "echo").python


def test_echo_env_sees_vlmhb_but_none_of_the_orchestrator(echo_python: Path) -> None:
    modules = ", ".join(WORKER_SIDE)
    ok = _in(echo_python, f"import {modules}; print('ok')")
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
    for package in ORCHESTRATOR_PACKAGES:
        result = _in(echo_python, f"import {package}")
        assert result.returncode != 0, f"{package} is importable in the echo env"
        assert "ModuleNotFoundError" in result.stderr


def test_worker_modules_are_stdlib_only() -> None:
    """Without site-packages at all (``-S``), every worker-side module still imports."""
    code = "import sys; " + "; ".join(f"import {m}" for m in WORKER_SIDE)
    names = repr(ORCHESTRATOR_PACKAGES)
    code += f"; print(sorted(m for m in sys.modules if m.split('.')[0] in {names}))"
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env=child_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_child_environment_is_minimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("HF_HOME", "/models")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    env = child_environment()
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HF_HOME"] == "/models" and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert list(Path(env["PYTHONPATH"]).iterdir()) == [Path(env["PYTHONPATH"]) / "vlmhb"]


def test_venv_run_records_the_env_and_scores_in_the_metrics_env(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=3)
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "stages": "infer,eval",
                "load": {"answer_field": True},
            }
        ]
    )
    outcome = api.run_plan(plan, runs_dir=tmp_path / "runs", isolation="venv", progress=False)
    assert [o.status for o in outcome.runs] == ["done"], outcome.runs[0].error
    run_dir = outcome.runs[0].prepared.run_dir
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert record["env"]["isolation"] == "venv" and record["env"]["name"] == "echo"
    assert len(record["env"]["lock_hash"]) == 64
    assert "/envs/echo-" in record["env"]["python"]
    assert (run_dir / "metrics" / "overall.parquet").is_file()
    metrics_python = child_python("venv", "metrics").python
    assert _in(metrics_python, "import rapidfuzz, pandas").returncode == 0
    assert _in(metrics_python, "import pydantic").returncode != 0


def test_every_module_imports_on_its_own() -> None:
    """No import cycles: each orchestrator module imports first in a fresh interpreter."""
    modules = sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in (REPO / "vlmhb").rglob("*.py")
        if "metrics" not in path.parts and path.name != "__main__.py" and "worker" not in path.parts
    )
    code = (
        "import importlib, subprocess, sys\n"
        "bad = []\n"
        "for m in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True,"
        " text=True)\n"
        "    if r.returncode: bad.append((m, r.stderr.strip().splitlines()[-1]))\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *modules],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_local_children_keep_the_orchestrators_pythonpath(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under ``local`` isolation a child must see packages the parent reaches via PYTHONPATH."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    local = child_python("local", "echo").environment()
    assert local["PYTHONPATH"].split(os.pathsep)[1:] == [str(tmp_path)]
    venv = child_python("venv", "echo").environment()
    assert str(tmp_path) not in venv["PYTHONPATH"]
