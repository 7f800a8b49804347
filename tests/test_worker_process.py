"""WorkerProcess: spawn, ready handshake, messages, stdout hygiene, timeouts, shutdown.

Every test drives a real ``python -m vlmhb.worker`` subprocess (echo backend, this
interpreter) or a real process that never answers.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from vlmhb.run.child_env import child_environment
from vlmhb.run.worker_process import (
    WorkerCommand,
    WorkerDied,
    WorkerFatal,
    WorkerProcess,
)
from vlmhb.worker import protocol


def echo_command() -> WorkerCommand:
    """This interpreter running the echo worker, with vlmhb's minimal child environment."""
    return WorkerCommand(
        [sys.executable, "-m", "vlmhb.worker"], child_environment(keep_pythonpath=True)
    )


def echo_init(**load: object) -> protocol.Init:
    return protocol.Init(backend="echo", model="echo", load={"check_images": False, **load})


def request(rid: str, prompt: str = "привет") -> protocol.Request:
    return protocol.Request(id=rid, images=[], prompt=prompt)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ready_then_answers_then_a_clean_stop(tmp_path: Path) -> None:
    worker = WorkerProcess(echo_command(), tmp_path / "worker.log")
    ready = worker.start(echo_init(), timeout=60)
    assert (ready.backend, ready.device, ready.pid) == ("echo", "cpu", worker.pid)
    assert worker.ready is ready
    for i in range(3):
        worker.send(request(f"q{i}", f"вопрос {i}"))
    answers = [worker.receive(30) for _ in range(3)]
    assert [(a.id, a.text) for a in answers if isinstance(a, protocol.Response)] == [
        (f"q{i}", f"вопрос {i}") for i in range(3)
    ]
    assert worker.receive(0.2) is None  # nothing more: a timeout, not an error
    assert worker.stop() == 0
    assert gone(ready.pid)


def test_raw_receive_and_preencoded_send(tmp_path: Path) -> None:
    with WorkerProcess(echo_command(), tmp_path / "worker.log") as worker:
        worker.start(echo_init(), timeout=60)
        worker.send_raw(protocol.encode(request("raw")).encode("utf-8"))
        data = worker.receive_raw(30)
        assert isinstance(data, dict) and (data["type"], data["id"]) == ("response", "raw")


def test_answers_of_one_batch_travel_as_one_line_and_come_out_in_order(tmp_path: Path) -> None:
    """A static batch's answers are one ``batch`` line (one JSON encoding, one read); the
    runner hands them out one by one, in order. Lines are counted at the real pipe."""
    with WorkerProcess(echo_command(), tmp_path / "worker.log") as worker:
        worker.start(
            protocol.Init(backend="echo", model="echo", load={"check_images": False}, batch_size=8),
            timeout=60,
        )
        lines: list[bytes] = []
        readline = worker._reader.readline

        def counted(timeout: float | None) -> bytes | None:
            line = readline(timeout)
            if line:
                lines.append(line)
            return line

        worker._reader.readline = counted  # type: ignore[method-assign]
        worker.send_raw(b"".join(protocol.encode(request(f"q{i}")).encode() for i in range(8)))
        answers = [worker.receive_raw(30) for _ in range(8)]
        assert [a["id"] for a in answers if a] == [f"q{i}" for i in range(8)]
        assert len(lines) < 8 and any(b'"type":"batch"' in line for line in lines)
    assert protocol.unbatched({"type": "batch", "messages": "junk"}) == []
    assert protocol.unbatched({"type": "response", "id": "x"}) == [{"type": "response", "id": "x"}]


def test_library_chatter_on_stdout_goes_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with WorkerProcess(echo_command(), log) as worker:
        worker.start(echo_init(print_stdout=True), timeout=60)
        worker.send(request("q"))
        answer = worker.receive(30)
        assert isinstance(answer, protocol.Response) and answer.text == "привет"
    text = log.read_text("utf-8", "replace")
    assert "a chatty library writes to stdout at load time" in text


def test_load_failure_is_worker_fatal_with_the_reason(tmp_path: Path) -> None:
    worker = WorkerProcess(echo_command(), tmp_path / "worker.log")
    with pytest.raises(WorkerFatal, match="weights are corrupt"):
        worker.start(echo_init(fail_load="weights are corrupt"), timeout=60)
    worker.kill()
    assert gone(worker.pid)


def test_a_crash_is_worker_died_with_exit_code_and_log_tail(tmp_path: Path) -> None:
    worker = WorkerProcess(echo_command(), tmp_path / "worker.log")
    worker.start(echo_init(crash_on="boom"), timeout=60)
    worker.send(request("boom"))
    with pytest.raises(WorkerDied) as died:
        worker.receive(30)
    assert died.value.returncode == 17  # the echo backend's os._exit(17)
    worker.kill()


def test_no_ready_within_the_load_timeout(tmp_path: Path) -> None:
    silent = WorkerCommand([sys.executable, "-c", "import time; time.sleep(120)"], {})
    worker = WorkerProcess(silent, tmp_path / "worker.log")
    started = time.monotonic()
    with pytest.raises(WorkerFatal, match="no ready message within 1 s"):
        worker.start(echo_init(), timeout=1)
    assert time.monotonic() - started < 30
    worker.kill()
    assert gone(worker.pid)


def test_a_hung_worker_is_killed_with_its_process_group(tmp_path: Path) -> None:
    worker = WorkerProcess(echo_command(), tmp_path / "worker.log")
    worker.start(echo_init(hang_on="stuck"), timeout=60)
    worker.send(request("stuck"))
    assert worker.receive(0.5) is None
    worker.kill()
    assert gone(worker.pid)


def test_an_exception_inside_the_context_kills_the_worker(tmp_path: Path) -> None:
    pid = 0
    with (
        pytest.raises(RuntimeError, match="caller failed"),
        WorkerProcess(echo_command(), tmp_path / "worker.log") as worker,
    ):
        pid = worker.start(echo_init(), timeout=60).pid
        raise RuntimeError("caller failed")
    assert pid and gone(pid)


def test_stderr_is_the_log_and_log_tail_reads_it(tmp_path: Path) -> None:
    noisy = WorkerCommand(
        [
            sys.executable,
            "-c",
            "import sys; print('line one', file=sys.stderr); print('two', file=sys.stderr)",
        ],
        {},
    )
    worker = WorkerProcess(noisy, tmp_path / "worker.log")
    with pytest.raises(WorkerDied) as died:
        worker.receive(30)
    assert died.value.returncode == 0
    assert worker.log_tail() == "line one | two"
    worker.kill()
