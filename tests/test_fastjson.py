"""fastjson: the runner's per-sample JSON is the same JSON the standard library reads, and
what orjson refuses still goes through (the standard library's way)."""

from __future__ import annotations

import json
import math

import pytest

from vlmhb.fastjson import dumps_line, loads


@pytest.mark.parametrize(
    "value",
    [
        {"id": "doc:поле", "answer": "Иванов «И.»\n\t\\", "n": 3, "x": 0.25, "none": None},
        {"nested": {"a": [1, 2.5, "б"], "t": True}, "empty": {}},
        {"tuple": (1, 2)},
    ],
)
def test_lines_are_compact_utf8_json_that_the_standard_library_reads(value: dict) -> None:
    line = dumps_line(value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    expected = json.loads(json.dumps(value, ensure_ascii=False))
    assert json.loads(line) == expected == loads(line)
    assert b"\\u04" not in line  # Cyrillic as UTF-8, not \u-escaped


def test_what_orjson_refuses_goes_through_the_standard_library() -> None:
    big = {"big": 2**70}  # over 64 bits
    assert json.loads(dumps_line(big)) == big
    assert json.loads(dumps_line({1: "a"})) == {"1": "a"}  # a non-string key
    surrogate = dumps_line({"s": "\ud800"})  # a lone surrogate, as Python writes it
    assert loads(surrogate) == {"s": "\ud800"}
    assert math.isnan(loads(b'{"x": NaN}')["x"])  # read as json reads it
    with pytest.raises(ValueError):
        loads(b"{not json")


def test_without_orjson_everything_goes_through_the_standard_library() -> None:
    """A model env has no orjson (``scripts/gpu_check.py`` imports the runner there)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['orjson'] = None\n"  # import orjson -> ImportError
        "from vlmhb.fastjson import dumps_line, loads\n"
        "line = dumps_line({'a': 'ж', 'n': [1, 2.5]})\n"
        'assert line == \'{"a":"ж","n":[1,2.5]}\\n\'.encode(), line\n'
        "assert loads(line) == {'a': 'ж', 'n': [1, 2.5]}\n"
        "import vlmhb.run.worker_process\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
