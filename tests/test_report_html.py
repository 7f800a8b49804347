"""The page escapes what runs contain: model names and answers never become markup."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from vlmhb.report import build_report
from vlmhb.report.html import script_json

try:
    from tests.fixtures_runs import RunSpec, make_runs
except ImportError:  # pytest's rootdir-relative import mode
    from fixtures_runs import RunSpec, make_runs  # type: ignore[no-redef]

EVIL = "</script><script>alert('x')</script><!--"


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": EVIL, "b": "Ёлкин"})
    assert "</" not in text and "<!--" not in text and "Ёлкин" in text
    assert json.loads(text)["a"] == EVIL


def test_run_values_are_escaped(tmp_path: Path) -> None:
    [run] = make_runs(tmp_path, [RunSpec("<b>evil</b>-model", "hf")], n_docs=3)
    samples_file = run / "metrics" / "by_sample.parquet"
    samples = pd.read_parquet(samples_file)
    samples.loc[0, "answer"] = EVIL
    samples.loc[0, "exact"] = 0.0
    samples.to_parquet(samples_file, index=False)
    html = build_report([run], tmp_path / "report.html").html.read_text("utf-8")
    assert "<b>evil</b>" not in html and "&lt;b&gt;evil&lt;/b&gt;" in html
    assert "alert('x')</script>" not in html
    opened = len(re.findall(r"<script[ >]", html))
    assert opened == html.count("</script>")  # every script element closes where it should
