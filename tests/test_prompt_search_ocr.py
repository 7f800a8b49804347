"""Prompt search with real Tesseract on the demo documents, in field and document mode.

Tesseract reads the page whatever the prompt says, so rephrasing cannot help it: every
difference between candidates must come out as a tie (CI including zero), the default keeps
every field, and the merged collection is answered entirely from the answer cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmhb import api
from vlmhb.report import build_report

TERSE = {
    "version": 1,
    "name": "terse",
    "system": "Только значение.",
    "defaults": {"field": "{field_label}?", "document": "JSON: {fields_json}"},
}


@pytest.mark.parametrize("mode", ["field", "document"])
def test_tesseract_search_finds_only_ties_and_merges_for_free(
    tmp_path: Path, answer_cache: Path, write_plan, mode: str
) -> None:
    terse = tmp_path / "terse.json"
    terse.write_text(json.dumps(TERSE, ensure_ascii=False), "utf-8")
    runs = tmp_path / "runs"
    result = api.search_prompts(
        dataset="synth:demo",
        backend="tesseract",
        model="tesseract-rus",
        candidates=[f"terse={terse}"],
        mode=mode,
        doc_types=("passport",),
        metric="anls",
        confirm=0.25,
        runs_dir=runs,
        isolation="local",
    )
    assert result.selections
    assert len(result.split.confirm) == 1  # one of the four passports
    for s in result.selections:
        assert s.winner == "default" and s.verdict == "tie", s
        assert s.vs_runner_up.value == 0.0 and s.vs_runner_up.includes_zero
    overall = {(s.doc_type, s.field): s for s in result.selections}
    # Tesseract does read the clean demo pages: the scores are real, not zeros.
    assert overall[("passport", "(all)")].scores["default"].value > 0.7
    assert overall[("passport", "(all)")].confirm["default"].n > 0
    plan = write_plan(
        [
            {
                "dataset": "synth:demo",
                "backend": "tesseract",
                "model": "tesseract-rus",
                "prompts": str(result.merged_json),
                "mode": mode,
                "doc_types": "passport",
            }
        ],
        "merged.csv",
    )
    (outcome,) = api.run_plan(plan, runs_dir=runs, isolation="local", progress=False).runs
    assert outcome.status == "done", outcome.error
    expected = result.runs["default"].counts["samples"]
    assert outcome.counts["reused"] == expected and outcome.counts["answered_now"] == 0
    assert outcome.overall == result.runs["default"].overall
    # The report's prompts section shows the search: heatmap, ties marked, confirm scores.
    report = build_report([runs], tmp_path / "report.html")
    page = report.html.read_text("utf-8")
    assert 'id="prompts"' in page and "prompt-heat-0" in page
    assert "<td>tie</td>" in page and "confirm: winner" in page
