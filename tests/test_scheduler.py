"""The GPU-slot scheduler with real echo workers on the CPU and fake GPU ids.

There is no GPU here, so the GPU ids are stand-ins (a test double for hardware that cannot
exist here): what is real is the slot bookkeeping, the ``CUDA_VISIBLE_DEVICES`` each real
worker process gets (read from the worker's own environment through /proc while it runs),
and the start/end times the scheduler records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb import api
from vlmhb.executors.local import SchedulerError, Slots, parse_gpus, read_schedule
from vlmhb.run.folder import iter_jsonl


class WorkerSpy:
    """Watches this process's worker children: run folder -> CUDA_VISIBLE_DEVICES seen."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for child in psutil.Process().children(recursive=True):
                try:
                    if "vlmhb.worker" not in " ".join(child.cmdline()):
                        continue
                    run_dir = Path(os.readlink(f"/proc/{child.pid}/fd/2")).parent.name
                    devices = child.environ().get("CUDA_VISIBLE_DEVICES")
                except (psutil.Error, OSError):
                    continue
                self.seen.setdefault(run_dir, set()).add(devices)
            time.sleep(0.05)

    def __enter__(self) -> WorkerSpy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def echo_row(name: str, gpus: int | None, delay: float = 0.15, **load: object) -> dict:
    row: dict[str, object] = {
        "dataset": "ds",
        "backend": "echo",
        "model": name,
        "name": name,
        "stages": "infer",
        "load": {"delay_s": delay, **load},
    }
    if gpus is not None:
        row["gpus"] = gpus
    return row


def intervals(runs_dir: Path) -> dict[str, dict]:
    """run name -> {start, end, gpus, devices, status} from scheduler.jsonl."""
    spans: dict[str, dict] = {}
    for event in read_schedule(runs_dir):
        span = spans.setdefault(event["label"], {"gpus": event["gpus"]})
        span[event["event"]] = event["time"]
        span["devices"] = event["devices"]
        span.setdefault("status", event.get("status"))
        if event["event"] == "end":
            span["status"] = event["status"]
    return spans


def assert_no_shared_slot(spans: dict[str, dict]) -> None:
    items = list(spans.items())
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1 :]:
            overlap = a["start"] < b["end"] and b["start"] < a["end"]
            shared = set(a["gpus"]) & set(b["gpus"])
            assert not (overlap and shared), f"{name_a} and {name_b} shared GPU {shared}"


def test_parse_gpus_and_slots() -> None:
    assert parse_gpus("0, 1,3") == ("0", "1", "3")
    assert parse_gpus("") == () and parse_gpus("none") == ()
    assert parse_gpus(None) is None
    with pytest.raises(SchedulerError):
        parse_gpus("zero")
    with pytest.raises(SchedulerError):
        Slots(gpus=("0", "0"))
    with pytest.raises(SchedulerError):
        Slots(jobs=0)
    assert not Slots().parallel and Slots(jobs=2).parallel and Slots(gpus=("0",)).parallel


def test_each_worker_gets_its_own_gpus_and_a_two_gpu_run_waits(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2, fields=("surname", "name"))
    plan = write_plan(
        [
            echo_row("r0", 1, delay=0.3),
            echo_row("r1", 1, delay=0.6),
            echo_row("r2", 1, delay=0.6),
            echo_row("big", 2, delay=0.2),  # waits until two of the three slots are free
            echo_row("after", 1, delay=0.1),  # must not overtake the waiting 2-GPU run
            echo_row("cpu", None, delay=0.1),  # echo: a CPU run, sees no GPU
        ]
    )
    runs = tmp_path / "runs"
    with WorkerSpy() as spy:
        result = api.run_plan(plan, runs_dir=runs, gpus="0,1,2", jobs=1, progress=False)
    assert [o.status for o in result.runs] == ["done"] * 6
    spans = intervals(runs)
    assert {name: len(span["gpus"]) for name, span in spans.items()} == {
        "r0": 1,
        "r1": 1,
        "r2": 1,
        "big": 2,
        "after": 1,
        "cpu": 0,
    }
    assert_no_shared_slot(spans)
    first_three = [spans[n] for n in ("r0", "r1", "r2")]
    assert sorted(g for s in first_three for g in s["gpus"]) == ["0", "1", "2"]
    # big needs two free slots: it starts only after two of the first three runs ended
    ends = sorted(s["end"] for s in first_three)
    assert spans["big"]["start"] >= ends[1]
    assert spans["after"]["start"] >= spans["big"]["start"]
    # the CPU run did not wait for the GPU queue
    assert spans["cpu"]["start"] < ends[0]
    # what each real worker process saw, against what the scheduler recorded
    by_dir = {o.prepared.run.name: o.prepared.run_dir.name for o in result.runs}
    for name, span in spans.items():
        assert span["devices"] == ",".join(span["gpus"])
        assert spy.seen[by_dir[name]] == {span["devices"]}, name
    for outcome in result.runs:
        assert len(list(iter_jsonl(outcome.prepared.run_dir / "answers.jsonl"))) == 4


def test_cpu_runs_share_the_jobs_budget(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2, fields=("surname",))
    plan = write_plan([echo_row(f"c{i}", None, delay=0.4) for i in range(4)])
    runs = tmp_path / "runs"
    with WorkerSpy() as spy:
        result = api.run_plan(plan, runs_dir=runs, gpus="", jobs=2, progress=False)
    assert all(o.status == "done" for o in result.runs)
    spans = intervals(runs)
    events = sorted(
        [(s["start"], 1) for s in spans.values()] + [(s["end"], -1) for s in spans.values()]
    )
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2
    # no GPU slots: CPU runs inherit the environment (no CUDA_VISIBLE_DEVICES set here)
    assert all(span["devices"] is None for span in spans.values())
    assert set().union(*spy.seen.values()) <= {os.environ.get("CUDA_VISIBLE_DEVICES")}


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2, fields=("surname",))
    plan = write_plan(
        [
            echo_row("ok1", 1),
            echo_row("broken", 1, fail_load="no such weights"),
            echo_row("ok2", 1),
        ]
    )
    runs = tmp_path / "runs"
    proc = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--gpus", "0,1"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "no such weights" in proc.stderr
    statuses = {s: span["status"] for s, span in intervals(runs).items()}
    assert statuses == {"ok1": "done", "broken": "failed", "ok2": "done"}


def test_a_run_needing_more_gpus_than_given_is_bad_input(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=1, fields=("surname",))
    plan = write_plan([echo_row("tp4", 4)])
    with pytest.raises(SchedulerError, match="needs 4 GPUs, only 2"):
        api.run_plan(plan, runs_dir=tmp_path / "runs", gpus="0,1", progress=False)


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie; a process that ends while we look is not alive."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def test_ctrl_c_stops_every_worker_and_keeps_answers(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=40, fields=("surname",))
    plan = write_plan([{**echo_row(f"long{i}", 1, delay=0.1), "batch_size": 1} for i in range(3)])
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--gpus", "0,1,2"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "vlmhb.worker" in " ".join(p.cmdline())
        ]
        flushed = [p.stat().st_size > 0 for p in runs.glob("*/answers.jsonl")]
        if len(workers) == 3 and len(flushed) == 3 and all(flushed):
            break
        time.sleep(0.1)
    assert len(workers) == 3
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not [w for w in workers if _alive(w)]
    for run_json in runs.glob("*/run.json"):
        record = json.loads(run_json.read_text("utf-8"))
        assert record["status"] == "interrupted"
        assert 0 < record["counts"]["answered"] < 40
        kept = list(iter_jsonl(run_json.parent / "answers.jsonl"))
        assert len(kept) == record["counts"]["answered"]


def test_a_bug_in_one_run_thread_fails_that_run_only(tmp_path: Path, write_plan) -> None:
    """An unexpected exception inside a run (injected: the real runner has none on purpose)."""
    from vlmhb.executors.local import run_scheduled
    from vlmhb.run.execute import execute_run

    make_dataset(tmp_path / "ds", n_docs=1, fields=("surname",))
    plan = write_plan([echo_row(n, 1, delay=0.05) for n in ("a", "bug", "c")])
    prepared = api.prepare_plan(plan, runs_dir=tmp_path / "runs")

    def execute(item, **kwargs):
        if item.run.name == "bug":
            raise RuntimeError("boom")
        return execute_run(item, **kwargs)

    seen: list[str] = []
    outcomes = run_scheduled(
        prepared,
        Slots(gpus=("0", "1")),
        runs_dir=tmp_path / "runs",
        progress=False,
        on_outcome=lambda o: seen.append(o.prepared.run.name),
        execute=execute,
    )
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert outcomes[1].error == "RuntimeError: boom"
    assert sorted(seen) == ["a", "bug", "c"]
