"""Runs end to end with the echo backend in a real worker subprocess: durability and faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import REPO, make_dataset, table_rows, vlmhb_cmd

from vlmhb import api
from vlmhb.run.folder import iter_jsonl

FIELDS = ("surname", "name", "birth_date")


def answers(run_dir: Path) -> list[dict]:
    return list(iter_jsonl(run_dir / "answers.jsonl"))


def only_run_dir(runs: Path) -> Path:
    (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
    return run_dir


def run_once(plan: Path, runs: Path) -> api.PlanOutcome:
    return api.run_plan(plan, runs_dir=runs, isolation="local", progress=False)


def test_echo_run_writes_a_complete_run_folder(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=4, fields=FIELDS)
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "echo-m",
                "stages": "infer",
                "load": {"answer_field": True},
            }
        ]
    )
    outcome = run_once(plan, tmp_path / "runs")
    assert [o.status for o in outcome.runs] == ["done"]
    run_dir = only_run_dir(tmp_path / "runs")
    lines = answers(run_dir)
    assert sorted(line["id"] for line in lines) == sorted(
        f"doc{d:04d}:{f}" for d in range(4) for f in FIELDS
    )
    assert all(line["answer"] == line["field"] and line["error"] is None for line in lines)
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert record["status"] == "done" and record["counts"]["answered"] == 12
    assert record["dataset_hash"] and record["prompts_hash"] and record["worker"]["backend"]
    csv_text = (run_dir / "answers.csv").read_bytes()
    assert csv_text.startswith(b"\xef\xbb\xbfid;model_answer")
    references = list(iter_jsonl(run_dir / "references.jsonl"))
    assert len(references) == 4 and references[0]["fields"]["surname"] == "surname-0"


def test_changed_prompt_gets_a_new_run_id(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    base = {"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}
    first = api.prepare_plan(write_plan([base], "a.csv"), runs_dir=tmp_path)[0]
    again = api.prepare_plan(write_plan([base], "b.csv"), runs_dir=tmp_path)[0]
    changed = api.prepare_plan(
        write_plan([{**base, "system_prompt": "Отвечай кратко."}], "c.csv"), runs_dir=tmp_path
    )[0]
    assert first.run_id == again.run_id
    assert changed.run_id != first.run_id


def test_bad_images_are_error_lines_not_the_end(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=5, corrupt=(1,), missing=(3,))
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}])
    run_once(plan, tmp_path / "runs")
    lines = answers(only_run_dir(tmp_path / "runs"))
    errors = {line["doc_id"] for line in lines if line["error"]}
    assert errors == {"doc0001", "doc0003"}
    assert len(lines) == 15


def test_crashing_sample_is_isolated_and_the_rest_answered(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=6)
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "stages": "infer",
                "batch_size": 4,
                "load": {"crash_on": "doc0002:name"},
            }
        ]
    )
    run_once(plan, tmp_path / "runs")
    run_dir = only_run_dir(tmp_path / "runs")
    lines = answers(run_dir)
    assert len(lines) == 18 and len({line["id"] for line in lines}) == 18
    failed = [line for line in lines if line["error"]]
    assert [line["id"] for line in failed] == ["doc0002:name"]
    assert "worker died (exit code 17)" in failed[0]["error"]
    assert json.loads((run_dir / "run.json").read_text())["worker"]["restarts"] >= 1


def test_hanging_sample_times_out_and_the_run_goes_on(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=3)
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "stages": "infer",
                "timeout_s": "1",
                "load": {"hang_on": "doc0001:surname"},
            }
        ]
    )
    run_once(plan, tmp_path / "runs")
    lines = answers(only_run_dir(tmp_path / "runs"))
    failed = {line["id"]: line["error"] for line in lines if line["error"]}
    assert list(failed) == ["doc0001:surname"]
    assert "timed out after 1 s" in failed["doc0001:surname"]
    assert len(lines) == 9


def test_load_failure_fails_the_run_with_the_reason(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "stages": "infer",
                "load": {"fail_load": "weights not found in /models/x"},
            }
        ]
    )
    outcome = run_once(plan, tmp_path / "runs")
    assert outcome.runs[0].status == "failed"
    assert "weights not found in /models/x" in (outcome.runs[0].error or "")


def _start_cli(plan: Path, runs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--isolation", "local"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_answers(runs: Path, at_least: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(runs.glob("*/answers.jsonl"))
        if found and sum(1 for _ in iter_jsonl(found[0])) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no answers appeared")


def _slow_plan(tmp_path: Path, write_plan, n_docs: int = 60) -> Path:
    make_dataset(tmp_path / "ds", n_docs=n_docs)
    return write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "stages": "infer",
                "batch_size": 4,
                "load": {"delay_s": 0.01},
            }
        ]
    )


def _assert_exactly_once(run_dir: Path, expected: int) -> None:
    counts = Counter(line["id"] for line in answers(run_dir))
    assert len(counts) == expected
    assert max(counts.values()) == 1
    assert not [line for line in answers(run_dir) if line["error"]]


def test_kill_9_of_the_orchestrator_then_resume(tmp_path: Path, write_plan) -> None:
    plan, runs = _slow_plan(tmp_path, write_plan), tmp_path / "runs"
    proc = _start_cli(plan, runs)
    _wait_for_answers(runs, 30, proc)
    proc.kill()
    proc.wait()
    run_dir = only_run_dir(runs)
    partial = len(answers(run_dir))
    assert 0 < partial < 180
    result = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs)),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _assert_exactly_once(run_dir, 180)


def test_kill_9_of_the_worker_is_survived(tmp_path: Path, write_plan) -> None:
    plan, runs = _slow_plan(tmp_path, write_plan), tmp_path / "runs"
    proc = _start_cli(plan, runs)
    _wait_for_answers(runs, 20, proc)
    (worker,) = psutil.Process(proc.pid).children()
    worker.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_dir = only_run_dir(runs)
    _assert_exactly_once(run_dir, 180)
    assert json.loads((run_dir / "run.json").read_text())["worker"]["restarts"] == 1
    # One sampler for the run: it follows the restarted worker, time never jumps back.
    times = pd.read_parquet(run_dir / "resources.parquet")["t"]
    assert times.is_monotonic_increasing and times.iloc[-1] > 0


def test_ctrl_c_keeps_answers_and_exits_130(tmp_path: Path, write_plan) -> None:
    plan, runs = _slow_plan(tmp_path, write_plan), tmp_path / "runs"
    proc = _start_cli(plan, runs)
    _wait_for_answers(runs, 20, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    run_dir = only_run_dir(runs)
    kept = len(answers(run_dir))
    assert kept >= 20
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"
    run_once(plan, runs)
    _assert_exactly_once(run_dir, 180)


def test_dry_run_touches_nothing(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m"}])
    runs = tmp_path / "runs"
    result = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--dry-run"),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (prepared,) = api.prepare_plan(plan, runs_dir=runs)
    (row,) = table_rows(result.stdout)
    assert (row["run id"], row["backend"], row["env"]) == (prepared.run_id, "echo", "echo")
    assert (row["docs"], row["samples"], row["answered"]) == ("2", "6", "0")  # 2 docs x 3 fields
    assert not runs.exists()


@pytest.mark.parametrize("stage_only", ["infer"])
def test_infer_command_resumes_a_run_folder(tmp_path: Path, write_plan, stage_only) -> None:
    make_dataset(tmp_path / "ds", n_docs=3)
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "stages": stage_only}])
    runs = tmp_path / "runs"
    run_once(plan, runs)
    run_dir = only_run_dir(runs)
    lines = (run_dir / "answers.jsonl").read_text("utf-8").splitlines(keepends=True)
    (run_dir / "answers.jsonl").write_text("".join(lines[:4]) + lines[4][:10], "utf-8")
    result = subprocess.run(
        vlmhb_cmd("infer", str(run_dir)), cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    _assert_exactly_once(run_dir, 9)
    assert os.path.exists(run_dir / "answers.csv")


def test_rerun_of_a_finished_run_keeps_its_figures(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=3)
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}])
    run_once(plan, tmp_path / "runs")
    run_dir = only_run_dir(tmp_path / "runs")
    first = json.loads((run_dir / "run.json").read_text("utf-8"))
    run_once(plan, tmp_path / "runs")
    second = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert second["counts"]["answered_now"] == 0
    assert second["worker"] == first["worker"] and second["worker"]["backend"] == "echo"
    assert second["resources"] == first["resources"]
    assert second["started_at"] == first["started_at"]
