"""run/dispatch.py: the window, resume, known-bad samples, crash and hang isolation.

A real echo worker (``python -m vlmhb.worker``, this interpreter) answers; its load options
make it crash or hang on chosen samples, as a real engine might.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vlmhb.errors import WorkerError
from vlmhb.run.child_env import child_environment
from vlmhb.run.dispatch import Dispatcher, DispatchSettings, Sample, answer_line
from vlmhb.run.folder import ANSWER_VERSION, AnswerLog, iter_jsonl
from vlmhb.run.worker_process import WorkerCommand, WorkerProcess
from vlmhb.worker import protocol


def sample(i: int, problem: str | None = None) -> Sample:
    return Sample(
        id=f"s{i}",
        doc_id=f"d{i}",
        doc_type="passport",
        field="surname",
        mode="field",
        prompt=f"ответ {i}",
        system=None,
        images=(),
        problem=problem,
    )


def dispatch(
    tmp_path: Path,
    samples: list[Sample],
    settings: DispatchSettings | None = None,
    on_worker: object = None,
    **load: object,
) -> tuple[Dispatcher, list[dict]]:
    command = WorkerCommand(
        [sys.executable, "-m", "vlmhb.worker"], child_environment(keep_pythonpath=True)
    )
    init = protocol.Init(backend="echo", model="echo", load={"check_images": False, **load})
    log = AnswerLog(tmp_path / "answers.jsonl")
    dispatcher = Dispatcher(
        command,
        init,
        log,
        tmp_path / "worker.log",
        settings or DispatchSettings(window=4, timeout_s=30, load_timeout_s=60, poll_s=0.05),
        on_worker=on_worker,  # type: ignore[arg-type]
        run_name="test-run",
    )
    try:
        dispatcher.run(samples)
    finally:
        log.close()
    return dispatcher, list(iter_jsonl(tmp_path / "answers.jsonl"))


def test_answer_line_keeps_the_sample_facts_and_drops_the_text_of_an_error() -> None:
    response = {"text": "Иванов", "latency_s": 0.2, "output_tokens": 1, "finish_reason": "stop"}
    line = answer_line(sample(1), 2, response, None)
    assert line["version"] == ANSWER_VERSION
    assert (line["id"], line["doc_id"], line["field"], line["attempt"]) == (
        "s1",
        "d1",
        "surname",
        2,
    )
    assert (line["answer"], line["error"], line["latency_s"]) == ("Иванов", None, 0.2)
    failed = answer_line(sample(1), 1, response, "boom")
    assert (failed["answer"], failed["error"]) == ("", "boom")


def test_every_sample_answered_once_in_a_bounded_window(tmp_path: Path) -> None:
    window = 3
    seen = {"sent": 0, "received": 0, "max_out": 0}

    def watch(worker: WorkerProcess) -> None:  # count what the real worker has outstanding
        send_raw, receive_raw = worker.send_raw, worker.receive_raw

        def counted_send(line: bytes) -> None:  # one write may carry several requests
            seen["sent"] += line.count(b"\n")
            seen["max_out"] = max(seen["max_out"], seen["sent"] - seen["received"])
            send_raw(line)

        def counted_receive(timeout: float | None) -> dict | None:
            message = receive_raw(timeout)
            seen["received"] += message is not None
            return message

        worker.send_raw = counted_send  # type: ignore[method-assign]
        worker.receive_raw = counted_receive  # type: ignore[method-assign]

    settings = DispatchSettings(window=window, timeout_s=30, load_timeout_s=60, poll_s=0.05)
    # An engine that holds one request at a time: the plan's window (3) is the bound.
    samples = [sample(i) for i in range(20)]
    dispatcher, lines = dispatch(tmp_path, samples, settings, watch, max_num_seqs=1)
    assert [line["id"] for line in lines] == [f"s{i}" for i in range(20)]
    assert [line["answer"] for line in lines] == [f"ответ {i}" for i in range(20)]
    assert dispatcher.stats.answered == 20 and dispatcher.stats.errors == 0
    # The window is the plan's, widened to twice what the worker said it can hold at once.
    capacity = dispatcher.stats.ready[-1].capacity or 0
    assert seen["sent"] == 20 and 1 <= seen["max_out"] <= max(window, 2 * capacity)


def test_an_answer_said_twice_is_written_once(tmp_path: Path) -> None:
    """The log keeps no ids of its own session: the in-flight window is what dedupes."""

    def stutter(worker: WorkerProcess) -> None:  # a faulty worker: every message twice
        receive_raw, repeat = worker.receive_raw, []

        def twice(timeout: float | None) -> dict | None:
            if repeat:
                return repeat.pop()
            message = receive_raw(timeout)
            if message is not None and message.get("type") == "response":
                repeat.append(dict(message))
            return message

        worker.receive_raw = twice  # type: ignore[method-assign]

    dispatcher, lines = dispatch(tmp_path, [sample(i) for i in range(12)], on_worker=stutter)
    assert sorted(line["id"] for line in lines) == sorted(f"s{i}" for i in range(12))
    assert dispatcher.stats.answered == 12 and dispatcher.log.answered == 12


def test_resume_skips_answered_samples_and_records_known_bad_ones_unasked(tmp_path: Path) -> None:
    _, first = dispatch(tmp_path, [sample(i) for i in range(3)])
    assert len(first) == 3
    samples = [sample(i) for i in range(5)] + [sample(5, problem="image missing: a.png")]
    dispatcher, lines = dispatch(tmp_path, samples)
    assert [line["id"] for line in lines[:3]] == ["s0", "s1", "s2"]  # kept, not redone
    assert sorted(line["id"] for line in lines[3:]) == ["s3", "s4", "s5"]
    assert dispatcher.stats.answered == 3  # s3, s4 and the known-bad s5
    bad = next(line for line in lines if line["id"] == "s5")
    assert bad["error"] == "image missing: a.png" and bad["answer"] == ""
    assert len(dispatcher.stats.ready) == 1


def test_nothing_to_do_starts_no_worker(tmp_path: Path) -> None:
    dispatcher, lines = dispatch(tmp_path, [sample(0, problem="unreadable")])
    assert dispatcher.stats.ready == [] and [line["error"] for line in lines] == ["unreadable"]


def test_a_crashing_sample_is_found_and_the_others_answered(tmp_path: Path) -> None:
    dispatcher, lines = dispatch(tmp_path, [sample(i) for i in range(8)], crash_on="s5")
    by_id = {line["id"]: line for line in lines}
    assert len(lines) == 8 and set(by_id) == {f"s{i}" for i in range(8)}
    assert "worker died (exit code 17)" in by_id["s5"]["error"]
    assert all(by_id[f"s{i}"]["error"] is None for i in range(8) if i != 5)
    assert dispatcher.stats.restarts >= 2  # once in the window, once alone as the suspect


def test_a_hanging_sample_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    settings = DispatchSettings(window=2, timeout_s=1.0, load_timeout_s=60, poll_s=0.05)
    dispatcher, lines = dispatch(tmp_path, [sample(i) for i in range(4)], settings, hang_on="s1")
    by_id = {line["id"]: line for line in lines}
    assert by_id["s1"]["error"] == "timed out after 1 s"
    assert [by_id[f"s{i}"]["answer"] for i in (0, 2, 3)] == ["ответ 0", "ответ 2", "ответ 3"]
    assert dispatcher.stats.timeouts >= 1


def test_a_worker_that_cannot_load_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(WorkerError, match="could not load: RuntimeError: no weights here"):
        dispatch(tmp_path, [sample(0)], fail_load="no weights here")
