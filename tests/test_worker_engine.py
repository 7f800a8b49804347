"""The worker's continuous path, for real: a worker subprocess, the echo backend as an engine.

``echo`` with ``continuous: true`` stands in for a continuously batching engine (vLLM's path
through the same loop, checked for real in the slow lane of test_backend_vllm.py): requests
enter it as they arrive, each takes 1-3 engine steps, answers leave out of order.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import psutil
from conftest import make_dataset, run_worker_lines, write_png
from test_runner import _start_cli, _wait_for_answers, answers, only_run_dir, run_once

ENGINE = {"continuous": True, "max_num_seqs": 4, "step_s": 0.002}


def requests(image: Path, n: int) -> list[dict]:
    return [
        {"type": "request", "id": f"r{i:02d}" + "x" * (i % 3), "images": [str(image)],
         "prompt": f"вопрос {i}", "generation": {"max_new_tokens": 2}}
        for i in range(n)
    ]  # fmt: skip


def test_engine_answers_as_they_finish_and_equal_the_static_path(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    write_png(image)
    asks = requests(image, 12)
    asks.append({"type": "request", "id": "missing", "images": [str(tmp_path / "no.png")],
                 "prompt": "x"})  # fmt: skip
    init = {"type": "init", "backend": "echo", "model": "m", "protocol": 1}
    engine, _ = run_worker_lines([{**init, "load": ENGINE}, *asks, {"type": "shutdown"}])
    static, _ = run_worker_lines([{**init, "batch_size": 64}, *asks, {"type": "shutdown"}])
    assert engine[0]["type"] == "ready" and engine[0]["continuous"] is True
    assert engine[0]["capacity"] == 4
    assert static[0]["continuous"] is False and static[0]["capacity"] == 64
    order = [m["id"] for m in engine[1:]]
    assert sorted(order) == sorted(a["id"] for a in asks)
    assert order != [a["id"] for a in asks]  # finished out of order, each when done
    drop = ("latency_s",)
    by_id = {m["id"]: {k: v for k, v in m.items() if k not in drop} for m in engine[1:]}
    want = {m["id"]: {k: v for k, v in m.items() if k not in drop} for m in static[1:]}
    assert by_id == want
    assert by_id["missing"]["type"] == "error"
    refused, _ = run_worker_lines(
        [{**init, "load": {**ENGINE, "refuse_on": "r03"}}, *asks, {"type": "shutdown"}]
    )
    assert {m["id"]: m["type"] for m in refused[1:]}["r03"] == "error"
    assert len(refused) == len(engine)


def test_the_window_follows_the_announced_capacity(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=50)
    plan = write_plan(
        [{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer",
          "load": {**ENGINE, "max_num_seqs": 48}}]
    )  # fmt: skip
    run_once(plan, tmp_path / "runs")
    run_dir = only_run_dir(tmp_path / "runs")
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert record["worker"]["capacity"] == 48 and record["worker"]["continuous"] is True
    assert len(answers(run_dir)) == 150 and record["counts"]["errors"] == 0
    timings = record["timings"]
    for key in ("env_prepare_s", "worker_start_s", "load_s", "ttfa_s", "teardown_s"):
        assert timings[key] is not None and timings[key] >= 0, key
    assert 0 < timings["ttfa_s"] <= timings["generation_s"] < timings["wall_s"]
    assert timings["worker_start_s"] >= timings["load_s"]
    resources = record["resources"]
    assert resources["generation_s"] == timings["generation_s"]
    assert resources["samples_per_s"] == 150 / timings["generation_s"]


def test_kill_9_of_the_worker_mid_engine_batch(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=60)
    plan = write_plan(
        [{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer",
          "load": {**ENGINE, "max_num_seqs": 4, "step_s": 0.03}}]
    )  # fmt: skip
    runs = tmp_path / "runs"
    proc = _start_cli(plan, runs)
    _wait_for_answers(runs, 20, proc)
    (worker,) = psutil.Process(proc.pid).children()
    worker.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_dir = only_run_dir(runs)
    lines = answers(run_dir)
    counts = Counter(line["id"] for line in lines)
    assert len(counts) == 180 and max(counts.values()) == 1
    assert not [line for line in lines if line["error"]]
    assert any(line["attempt"] == 2 for line in lines)  # what was in flight was re-sent
    assert json.loads((run_dir / "run.json").read_text())["worker"]["restarts"] == 1


def test_a_request_hanging_the_engine_times_out_alone(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=4)
    plan = write_plan(
        [{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer",
          "timeout_s": "1", "load": {**ENGINE, "hang_on": "doc0001:surname"}}]
    )  # fmt: skip
    run_once(plan, tmp_path / "runs")
    lines = answers(only_run_dir(tmp_path / "runs"))
    failed = {line["id"]: line["error"] for line in lines if line["error"]}
    assert list(failed) == ["doc0001:surname"]
    assert "timed out after 1 s" in failed["doc0001:surname"]
    assert len(lines) == 12 and len({line["id"] for line in lines}) == 12
