"""JSON on the runner's per-sample paths: orjson, and the standard library for what it refuses.

Every request, answer and ``answers.jsonl`` line passes through here: ``json.dumps`` with
options costs ~8-12 µs a line (it builds an encoder per call), orjson ~1 µs. The output is
the same JSON (compact, UTF-8, not ASCII-escaped). orjson refuses a few things the standard
library writes or reads (integers over 64 bits, ``NaN``, non-string keys); those lines go
through ``json`` as before. The worker side never imports this: it stays stdlib-only.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps_line(value: Any) -> bytes:
    """``value`` as one compact JSON line, newline included, as UTF-8 bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except (TypeError, orjson.JSONEncodeError):
        return (_ENCODER.encode(value) + "\n").encode("utf-8", "surrogatepass")


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; ``ValueError`` if it is not one."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # NaN, Infinity, lone surrogates: what Python writes too
