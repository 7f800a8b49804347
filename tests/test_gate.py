"""The CI gate: threshold syntax, checks against metric tables, JUnit XML, exit codes."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb import api
from vlmhb.gate.junit import write_junit
from vlmhb.gate.thresholds import (
    GateSpecError,
    check_gate,
    parse_threshold,
    parse_thresholds,
    read_measure,
)


def test_threshold_syntax() -> None:
    plain = parse_threshold("exact_match=0.8")
    assert (plain.metric, plain.op, plain.value, plain.selectors) == ("exact_match", "=", 0.8, ())
    # a bare '=' is "at least" or "at most" by the direction metrics.json records
    assert plain.comparison(higher_is_better=True) == ">="
    at_most = parse_threshold("cer_micro=0.1")
    assert at_most.comparison(higher_is_better=False) == "<="
    assert at_most.passes(0.1, higher_is_better=False)
    assert not at_most.passes(0.11, higher_is_better=False)
    explicit = parse_threshold("anls > 0.5")
    assert (explicit.op, explicit.value) == (">", 0.5)
    scoped = parse_threshold("model=tesseract-rus:field=surname:exact_match=0.9")
    assert scoped.selector("model") == "tesseract-rus" and scoped.selector("field") == "surname"
    assert scoped.passes(0.9) and not scoped.passes(0.89)
    assert parse_threshold("cer_micro<=0.1").passes(0.1)
    assert not parse_threshold("cer_micro<0.1").passes(0.1)


@pytest.mark.parametrize(
    "spec",
    [
        "exact_match",
        "exact_match=high",
        "colour=red:exact_match=0.5",
        "field=a:doc_type=b:exact_match=0.5",
        "model=a:model=b:exact_match=0.5",
        "exact_match=0.5:model=a",
    ],
)
def test_bad_thresholds_are_rejected(spec: str) -> None:
    with pytest.raises(GateSpecError):
        parse_thresholds([spec])


def write_tables(run_dir: Path, overall: dict[str, float], by_field: dict[str, dict]) -> None:
    """Metric tables in the shape the metrics stage writes (docs/architecture.md)."""
    metrics = run_dir / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    lines = ["metric,value,ci_low,ci_high,n"]
    lines += [f"{m},{v},{v - 0.05},{v + 0.05},30" for m, v in overall.items()]
    (metrics / "overall.csv").write_text("\n".join(lines) + "\n", "utf-8")
    lines = ["field,metric,value,ci_low,ci_high,n"]
    for field, values in by_field.items():
        lines += [f"{field},{m},{v},{v - 0.1},{v + 0.1},10" for m, v in values.items()]
    (metrics / "by_field.csv").write_text("\n".join(lines) + "\n", "utf-8")


def outcomes_with_tables(tmp_path: Path, write_plan) -> list[api.RunOutcome]:
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan(
        [
            {"dataset": "ds", "backend": "echo", "model": "tesseract-rus", "name": "ocr"},
            {"dataset": "ds", "backend": "echo", "model": "qwen-2b", "name": "vlm"},
            {"dataset": "ds", "backend": "echo", "model": "broken-model"},
        ]
    )
    prepared = api.prepare_plan(plan, runs_dir=tmp_path / "runs")
    write_tables(
        prepared[0].run_dir,
        {"exact_match": 0.6, "cer_micro": 0.2},
        {"surname": {"exact_match": 0.95}, "name": {"exact_match": 0.4}},
    )
    write_tables(prepared[1].run_dir, {"exact_match": 0.85, "cer_micro": 0.05}, {})
    return [
        api.RunOutcome(prepared[0], status="done"),
        api.RunOutcome(prepared[1], status="done"),
        api.RunOutcome(prepared[2], status="failed", error="worker died"),
    ]


def test_checks_read_the_metric_tables(tmp_path: Path, write_plan) -> None:
    outcomes = outcomes_with_tables(tmp_path, write_plan)
    measure = read_measure(outcomes[0].prepared.run_dir, "exact_match", field="surname")
    assert measure is not None and (measure.value, measure.n) == (0.95, 10)
    assert read_measure(outcomes[0].prepared.run_dir, "exact_match", field="nope") is None
    thresholds = parse_thresholds(
        [
            "model=tesseract-rus:field=surname:exact_match=0.9",  # 0.95: pass
            "model=tesseract-rus:field=name:exact_match=0.9",  # 0.4: miss
            "run=vlm:cer_micro=0.1",  # 0.05 <= 0.1: pass
            "model=qwen*:exact_match>=0.9",  # 0.85: miss
            "model=nobody:exact_match=0.1",  # matches no run: fails
            "model=broken-model:exact_match=0.1",  # the run failed: fails
            "backend=echo:field=name:anls=0.5",  # not measured anywhere
        ]
    )
    result = check_gate(outcomes, thresholds)
    verdicts = [(c.threshold.spec.split(":")[-1], c.label, c.passed) for c in result.checks]
    assert verdicts == [
        ("exact_match=0.9", "ocr", True),
        ("exact_match=0.9", "ocr", False),
        ("cer_micro=0.1", "vlm", True),
        ("exact_match>=0.9", "vlm", False),
        ("exact_match=0.1", "-", False),
        ("exact_match=0.1", "broken-model [echo]", False),
        ("anls=0.5", "ocr", False),
        ("anls=0.5", "vlm", False),
        ("anls=0.5", "broken-model [echo]", False),
    ]
    missed = result.checks[1]
    assert "exact_match[field=name] = 0.4" in missed.message and "0.3-0.5" in missed.message
    assert "no run" in result.checks[4].message and "worker died" in result.checks[5].message


def test_junit_has_a_testcase_per_run_and_check(tmp_path: Path, write_plan) -> None:
    outcomes = outcomes_with_tables(tmp_path, write_plan)
    gate = check_gate(outcomes, parse_thresholds(["exact_match=0.8"]))
    path = write_junit(outcomes, gate, tmp_path / "out" / "results.xml")
    root = ET.parse(path).getroot()
    runs, checks = root.findall("testsuite")
    assert [c.get("name").split(" (")[0] for c in runs.findall("testcase")] == [
        "ocr",
        "vlm",
        "broken-model [echo]",
    ]
    assert runs.get("failures") == "1"
    cases = checks.findall("testcase")
    assert len(cases) == 3 and checks.get("failures") == "2"
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("type") == "ThresholdMissed"
    assert "exact_match = 0.6 (95% CI 0.55-0.65, n=30) misses >= 0.8" in failure.get("message")
    assert cases[1].find("failure") is None
    assert root.get("tests") == "6" and root.get("failures") == "3"


def test_cli_exit_codes_and_junit_from_real_runs(tmp_path: Path, write_plan) -> None:
    """A real echo run scored by the real metrics stage, gated from the command line."""
    make_dataset(tmp_path / "ds", n_docs=3, fields=("surname", "name"))
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "echo-m",
                "stages": "infer,eval",
                "load": {"answer": "surname-1"},  # right once: exact_match 1/6
            }
        ]
    )
    runs, junit = tmp_path / "runs", tmp_path / "results.xml"
    base = ["run", str(plan), "--runs-dir", str(runs)]

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            vlmhb_cmd(*base, *extra), cwd=REPO, capture_output=True, text=True, timeout=180
        )

    missed = run("--fail-under", "exact_match=0.5", "--junit", str(junit))
    assert missed.returncode == 3, missed.stderr
    assert "gate FAIL" in missed.stdout
    failure = ET.parse(junit).getroot().find(".//testsuite[@name='vlmhb.gate']/testcase/failure")
    assert failure is not None
    assert "exact_match = 0.1667" in failure.get("message") and "95% CI" in failure.get("message")
    passed = run("--fail-under", "exact_match=0.1", "--fail-under", "field=surname:cer_micro<=0.5")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    bad = run("--fail-under", "exact_match=lots")
    assert bad.returncode == 2 and "error:" in bad.stderr
