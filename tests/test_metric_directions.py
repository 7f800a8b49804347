"""Metric directions: the registry owns them, metrics.json records them, readers use the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmhb.metrics._registry import HIGHER_IS_BETTER, direction_of, directions, metric
from vlmhb.run.files import METRICS_DIR, METRICS_JSON
from vlmhb.run.metric_directions import higher_is_better, read_directions


def test_the_registry_knows_built_ins_and_their_averages() -> None:
    assert direction_of("exact_match") is True and direction_of("cer") is False
    assert direction_of("cer_micro") is False and direction_of("wer_macro") is False
    assert direction_of("json_parse_failure_rate") is False and direction_of("field_f1") is True
    assert direction_of("exact") is True and direction_of("cer_raw") is False  # columns
    assert direction_of("no_such_metric") is None and direction_of("no_such_micro") is None


def test_a_plugin_metric_declares_its_direction_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from vlmhb.metrics import METRICS

    monkeypatch.setattr("vlmhb.metrics._registry.METRICS", dict(METRICS))
    metric("hallucinated_digits", higher_is_better=False, column="hall")(lambda batch: batch)
    assert directions(["hallucinated_digits", "hall", "exact_match"]) == {
        "hallucinated_digits": False,
        "hall": False,
        "exact_match": True,
    }
    with pytest.raises(ValueError, match="say whether higher is better"):
        metric("undecided")(lambda batch: batch)


def write_summary(run_dir: Path, summary: dict) -> None:
    (run_dir / METRICS_DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / METRICS_DIR / METRICS_JSON).write_text(json.dumps(summary), "utf-8")


def test_readers_take_the_recorded_direction(tmp_path: Path) -> None:
    write_summary(tmp_path, {"higher_is_better": {"my_score": False, "exact_match": True}})
    recorded = read_directions(tmp_path)
    assert higher_is_better("my_score", recorded) is False
    assert higher_is_better("my_score_micro", recorded) is False
    assert higher_is_better("cer", recorded) is False  # not recorded: the registry's table
    assert higher_is_better("someone_elses_score", recorded) is None  # nobody says


def test_old_folders_fall_back_to_the_registry_table(tmp_path: Path) -> None:
    assert read_directions(tmp_path) == HIGHER_IS_BETTER  # not scored at all
    write_summary(tmp_path, {"version": 1, "overall": {"exact_match": 0.5}})  # before the key
    assert read_directions(tmp_path) == HIGHER_IS_BETTER
    (tmp_path / METRICS_DIR / METRICS_JSON).write_text("{torn", "utf-8")
    assert read_directions(tmp_path) == HIGHER_IS_BETTER


def test_the_gate_reads_a_direction_no_suffix_could_guess(tmp_path: Path) -> None:
    """'my_score=0.3' means at most 0.3 when the run records my_score as lower-is-better."""
    from vlmhb.gate.thresholds import parse_threshold

    write_summary(tmp_path, {"higher_is_better": {"my_score": False}})
    threshold = parse_threshold("my_score=0.3")
    higher = higher_is_better("my_score", read_directions(tmp_path))
    assert higher is False and threshold.comparison(higher) == "<="
    assert threshold.passes(0.2, higher) and not threshold.passes(0.4, higher)
