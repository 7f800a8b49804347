"""The worker as a real subprocess: handshake, stdout hygiene, batching, failures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from conftest import run_worker_lines, write_png

from vlmhb.worker import protocol


def talk(messages: list[object], timeout: float = 30) -> tuple[list[dict], str]:
    """Run ``python -m vlmhb.worker`` on these messages; return its replies and stderr."""
    return run_worker_lines([dataclasses.asdict(m) for m in messages], timeout=timeout)


def test_roundtrip_keeps_unicode_and_ignores_unknown_keys() -> None:
    request = protocol.Request(id="a", images=["/x.png"], prompt="Фамилия?", field="surname")
    line = protocol.encode(request)
    assert "Фамилия" in line and line.endswith("\n")
    data = json.loads(line)
    data["future_key"] = 1
    assert protocol.decode(json.dumps(data)) == request


def test_library_output_on_stdout_never_reaches_the_protocol(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    write_png(image)
    replies, stderr = talk(
        [
            protocol.Init(backend="echo", model="m", load={"print_stdout": True}, batch_size=4),
            protocol.Request(id="1", images=[str(image)], prompt="раз"),
            protocol.Request(id="2", images=[str(image)], prompt="два"),
            protocol.Shutdown(),
        ]
    )
    assert [r["type"] for r in replies] == ["ready", "response", "response"]
    assert [r["text"] for r in replies[1:]] == ["раз", "два"]
    assert "chatty library" in stderr and "straight to fd 1" in stderr


def test_bad_image_is_an_error_and_the_batch_goes_on(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    write_png(good)
    bad.write_bytes(b"not an image")
    replies, _ = talk(
        [
            protocol.Init(backend="echo", model="m", batch_size=8),
            protocol.Request(id="bad", images=[str(bad)], prompt="p"),
            protocol.Request(id="missing", images=[str(tmp_path / "no.png")], prompt="p"),
            protocol.Request(id="good", images=[str(good)], prompt="p"),
            protocol.Shutdown(),
        ]
    )
    by_id = {r.get("id"): r for r in replies[1:]}
    assert by_id["bad"]["type"] == "error" and "not a readable image" in by_id["bad"]["message"]
    assert by_id["missing"]["type"] == "error" and "not found" in by_id["missing"]["message"]
    assert by_id["good"]["type"] == "response"


def test_load_failure_is_one_fatal_line() -> None:
    replies, _ = talk([protocol.Init(backend="echo", model="m", load={"fail_load": "no weights"})])
    assert len(replies) == 1 and replies[0]["type"] == "fatal"
    assert "no weights" in replies[0]["message"]


def test_unknown_backend_and_protocol_mismatch_are_fatal() -> None:
    replies, _ = talk([protocol.Init(backend="nope", model="m")])
    assert replies[0]["type"] == "fatal" and "unknown backend 'nope'" in replies[0]["message"]
    replies, _ = talk([protocol.Init(backend="echo", model="m", protocol=99)])
    assert replies[0]["type"] == "fatal" and "protocol 99" in replies[0]["message"]


def test_max_new_tokens_cut_reports_length() -> None:
    replies, _ = talk(
        [
            protocol.Init(backend="echo", model="m", load={"check_images": False}),
            protocol.Request(
                id="1", images=[], prompt="one two three four", generation={"max_new_tokens": 2}
            ),
            protocol.Shutdown(),
        ]
    )
    assert replies[1]["text"] == "one two" and replies[1]["finish_reason"] == "length"
