"""The Ray executor's parts that need no cluster: addresses, SIGTERM, the run log, a missing Ray.

The cluster itself (tasks, retries after a lost node, cancelling) is exercised for real in
``tests/test_ray_executor.py`` (slow lane).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_dataset

from vlmhb.cli.main import main
from vlmhb.executors.ray import (
    RayError,
    append_event,
    import_ray,
    is_loopback,
    read_events,
    sigterm_interrupts,
)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:6379", True),
        ("127.0.0.2:6379", True),
        ("localhost:6379", True),
        ("[::1]:6379", True),
        ("ray://127.0.0.1:10001", True),
        ("10.0.0.5:6379", False),
        ("head.internal:6379", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_sigterm_becomes_an_interrupt_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this at once
    assert signal.getsignal(signal.SIGTERM) == before


def test_events_append_whole_lines(tmp_path: Path) -> None:
    append_event(tmp_path, {"event": "start", "run_id": "a", "label": "Иванов"})
    append_event(tmp_path, {"event": "end", "run_id": "a", "status": "done"})
    events = read_events(tmp_path)
    assert [e["event"] for e in events] == ["start", "end"]
    assert events[0]["label"] == "Иванов" and events[1]["time"] >= events[0]["time"]
    assert read_events(tmp_path / "nowhere") == []


def test_missing_ray_is_a_one_line_error(
    tmp_path: Path, write_plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray absent: importing it fails
    with pytest.raises(RayError, match=r"vlmhb\[ray\]"):
        import_ray("10.0.0.5:6379")
    make_dataset(tmp_path / "ds", n_docs=1, fields=("surname",))
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}])
    result = CliRunner().invoke(
        main, ["run", str(plan), "--runs-dir", str(tmp_path / "runs"), "--executor", "ray"]
    )
    assert result.exit_code == 2, result.output
    assert "pip install 'vlmhb[ray]'" in result.output
    assert not any((tmp_path / "runs").glob("*/answers.jsonl"))  # nothing ran
