"""Faults at the edges of a run, for real: two writers, stop signals, a killed orchestrator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb.run.folder import iter_jsonl

N_DOCS, FIELDS = 60, 3


def _plan(tmp_path: Path, write_plan, **load: object) -> Path:
    make_dataset(tmp_path / "ds", n_docs=N_DOCS)
    row = {"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer", "batch_size": 4}
    return write_plan([{**row, "load": {"delay_s": 0.02, **load}}])


def _start(plan: Path, runs: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--isolation", "local"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _answers(runs: Path) -> list[dict]:
    found = list(runs.glob("*/answers.jsonl"))
    return list(iter_jsonl(found[0])) if found else []


def _wait_for_answers(runs: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(_answers(runs)) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no answers appeared")


def _worker_of(proc: subprocess.Popen[str]) -> psutil.Process:
    (worker,) = [
        p for p in psutil.Process(proc.pid).children() if "vlmhb.worker" in " ".join(p.cmdline())
    ]
    return worker


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_second_run_of_the_same_plan_stops_and_writes_nothing(tmp_path: Path, write_plan) -> None:
    plan, runs = _plan(tmp_path, write_plan), tmp_path / "runs"
    first = _start(plan, runs)
    _wait_for_answers(runs, 10, first)
    second = _start(plan, runs)
    _, second_err = second.communicate(timeout=120)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.returncode == 1, second_err
    assert "another vlmhb process is writing this run" in second_err
    assert f"pid {first.pid}" in second_err
    ids = Counter(line["id"] for line in _answers(runs))
    assert len(ids) == N_DOCS * FIELDS and max(ids.values()) == 1
    third = subprocess.run(  # the lock went with its holder: the folder is free again
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert third.returncode == 0, third.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_are_handled_like_ctrl_c(
    tmp_path: Path, write_plan, signum: int, code: int
) -> None:
    plan, runs = _plan(tmp_path, write_plan), tmp_path / "runs"
    proc = _start(plan, runs)
    _wait_for_answers(runs, 20, proc)
    worker = _worker_of(proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "answers written so far are kept" in err
    (record,) = runs.glob("*/run.json")
    assert json.loads(record.read_text())["status"] == "interrupted"
    assert len(_answers(runs)) >= 20
    assert _gone(worker)


def test_the_worker_and_its_children_die_with_a_killed_orchestrator(
    tmp_path: Path, write_plan
) -> None:
    plan, runs = _plan(tmp_path, write_plan, delay_s=0.5, spawn_child_s=600), tmp_path / "runs"
    proc = _start(plan, runs)
    _wait_for_answers(runs, 4, proc)
    worker = _worker_of(proc)
    (helper,) = worker.children()
    assert "sleep" in helper.name()
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs in the orchestrator
    proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (_gone(worker) and _gone(helper)):
        time.sleep(0.1)
    assert _gone(worker), "the worker outlived the orchestrator"
    assert _gone(helper), "the worker's child outlived it"
    assert "the orchestrator is gone" in next(runs.glob("*/worker.log")).read_text()
