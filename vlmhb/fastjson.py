"""JSON on the runner's per-sample paths: orjson, and the standard library for what it refuses.

Every request, answer and ``answers.jsonl`` line passes through here: ``json.dumps`` with
options costs ~8-12 µs a line (it builds an encoder per call), orjson ~1 µs. The output is
the same JSON (compact, UTF-8, not ASCII-escaped). orjson refuses a few things the standard
library writes or reads (integers over 64 bits, ``NaN``, non-string keys); those lines go
through ``json`` as before. The worker never imports this (it stays stdlib-only); a script
that drives a worker from inside a model env (``scripts/gpu_check.py``) may, and where orjson
is not installed everything goes through ``json``.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # a model env running scripts/gpu_check.py: the standard library only
    orjson = None  # type: ignore[assignment]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps_line(value: Any) -> bytes:
    """``value`` as one compact JSON line, newline included, as UTF-8 bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
        except (TypeError, orjson.JSONEncodeError):
            pass
    return (_ENCODER.encode(value) + "\n").encode("utf-8", "surrogatepass")


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; ``ValueError`` if it is not one."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, lone surrogates: what Python writes too
    return json.loads(data)
