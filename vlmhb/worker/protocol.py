"""Messages between the orchestrator and a worker: JSON lines over stdin/stdout.

Standard library only (it is imported inside model venvs). One JSON object a line, with a
``type`` discriminator. The flow is::

    orchestrator -> worker:  init, request*, shutdown
    worker -> orchestrator:  ready | fatal, then response | error per request

Answers finished together (a static batch, one engine step) may travel as one ``batch``
line, ``{"type": "batch", "messages": [...]}``, which stands for its messages in order: one
JSON encoding per batch instead of one per answer (``encode_many``).

``init`` carries ``PROTOCOL_VERSION``; a worker that speaks another version answers ``fatal``.
Images travel as absolute file paths, never as bytes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

PROTOCOL_VERSION = 1


@dataclass
class Init:
    """First message: which backend and model to load, and how."""

    backend: str
    model: str
    load: dict[str, Any] = dataclasses.field(default_factory=dict)
    generation: dict[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int | None = None  # None: the backend's own default
    protocol: int = PROTOCOL_VERSION
    type: str = "init"


@dataclass
class Request:
    """One inference request: a prompt about one document's images."""

    id: str
    images: list[str]
    prompt: str
    system: str | None = None
    doc_type: str | None = None
    field: str | None = None
    generation: dict[str, Any] = dataclasses.field(default_factory=dict)
    type: str = "request"


@dataclass
class Shutdown:
    """Last message: finish and exit 0."""

    type: str = "shutdown"


@dataclass
class Ready:
    """The model is loaded; the worker accepts requests."""

    backend: str
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    device: str = "cpu"
    load_s: float = 0.0
    pid: int = 0
    # How many requests the engine works on at once (a continuous engine's max_num_seqs, a
    # static backend's batch size); the orchestrator sizes its in-flight window by it.
    capacity: int | None = None
    continuous: bool = False
    type: str = "ready"


@dataclass
class Response:
    """The answer to one request."""

    id: str
    text: str
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    ttft_s: float | None = None
    itl_s: list[float] | None = None  # gaps between streamed chunks (streaming backends)
    started_at: float | None = None  # wall clock when the request went out (streaming backends)
    type: str = "response"


@dataclass
class Error:
    """One request failed; the worker goes on with the next."""

    id: str
    message: str
    type: str = "error"


@dataclass
class Fatal:
    """The worker cannot go on (load failure, protocol mismatch); it exits after this."""

    message: str
    type: str = "fatal"


Message = Init | Request | Shutdown | Ready | Response | Error | Fatal

_TYPES: dict[str, type] = {
    str(f.default): cls
    for cls in (Init, Request, Shutdown, Ready, Response, Error, Fatal)
    for f in fields(cls)
    if f.name == "type"
}
_FIELD_NAMES = {name: {f.name for f in fields(cls)} for name, cls in _TYPES.items()}


class ProtocolError(ValueError):
    """A line that is not a valid message."""


def encode(message: Any) -> str:
    """One message as a JSON line, newline included.

    Messages hold only JSON types, so the instance ``__dict__`` is encoded as is: ~7 µs a
    request against ~25 µs through ``dataclasses.asdict``, which deep-copies every field
    (``benchmarks/harness.py --encoding`` prints both).
    """
    return encode_dict(vars(message))


def encode_many(messages: list[Any]) -> str:
    """Several messages as one line: a ``batch`` of them, or the message itself when alone."""
    if len(messages) == 1:
        return encode(messages[0])
    return encode_dict({"type": BATCH, "messages": [vars(m) for m in messages]})


BATCH = "batch"


def unbatched(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages a decoded line stands for: a ``batch``'s, in order, or the line itself."""
    if data.get("type") != BATCH:
        return [data]
    inner = data.get("messages")
    return (
        [m for m in inner if isinstance(m, dict) and "type" in m] if isinstance(inner, list) else []
    )


def encode_dict(data: dict[str, Any]) -> str:
    """A message already held as a plain dict (its fields and ``type``), as a JSON line."""
    return _ENCODER.encode(data) + "\n"


# One encoder for every message: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def decode(line: str | bytes) -> Message:
    """Parse one JSON line into its message type; unknown keys are ignored (forward compat)."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:200]!r}") from exc
    return from_dict(data)


def from_dict(data: Any) -> Message:
    """The message a decoded JSON object stands for."""
    if not isinstance(data, dict):
        raise ProtocolError(f"not a JSON object: {str(data)[:200]!r}")
    kind = data.get("type")
    cls = _TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    known = _FIELD_NAMES[kind]  # type: ignore[index]
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise ProtocolError(f"bad {kind} message: {exc}") from exc
