"""vlmhb.worker.protocol: one JSON object a line, a ``type`` discriminator, forward compatible."""

from __future__ import annotations

import json

import pytest

from vlmhb.worker import protocol
from vlmhb.worker.protocol import (
    PROTOCOL_VERSION,
    Error,
    Fatal,
    Init,
    ProtocolError,
    Ready,
    Request,
    Response,
    Shutdown,
    decode,
    encode,
)

MESSAGES = [
    Init(backend="echo", model="m", load={"a": 1}, generation={"max_new_tokens": 8}, batch_size=4),
    Request(id="d1:surname", images=["/abs/стр1.png"], prompt="Фамилия?", field="surname"),
    Shutdown(),
    Ready(backend="echo", versions={"python": "3.11"}, device="cpu", load_s=0.5, pid=42),
    Response(id="d1:surname", text="Иванов", latency_s=0.1, output_tokens=1, ttft_s=0.05),
    Error(id="d1:surname", message="cannot read image"),
    Fatal(message="no such model"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_every_message_survives_a_round_trip(message: protocol.Message) -> None:
    line = encode(message)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode(line) == message
    assert decode(line.encode("utf-8")) == message


def test_lines_are_compact_utf8_with_the_version_in_init() -> None:
    line = encode(MESSAGES[1])
    assert "Фамилия" in line and "\\u" not in line  # ensure_ascii=False
    assert ", " not in line and '": ' not in line  # compact separators
    init = json.loads(encode(Init(backend="hf", model="x")))
    assert init["protocol"] == PROTOCOL_VERSION and init["type"] == "init"


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    data = {"type": "response", "id": "x", "text": "t", "added_in_v2": [1, 2]}
    assert decode(json.dumps(data)) == Response(id="x", text="t")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "telepathy"}', "unknown message type 'telepathy'"),
        ('{"id": "x"}', "unknown message type None"),
        ('{"type": "request", "id": "x"}', "bad request message"),
        ('{"type": "init", "backend": "echo"}', "bad init message"),
    ],
)
def test_invalid_lines_raise_protocol_error(line: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason.replace("(", r"\(")):
        decode(line)


def test_from_dict_builds_the_message_a_decoded_object_stands_for() -> None:
    message = protocol.from_dict({"type": "error", "id": "q", "message": "boom"})
    assert isinstance(message, Error) and (message.id, message.message) == ("q", "boom")
    assert ProtocolError.__mro__[1] is ValueError  # callers may catch ValueError
