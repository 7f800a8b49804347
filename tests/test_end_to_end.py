"""A plan through infer → eval → report, once per backend that runs here (echo, tesseract).

Each test runs the real CLI in a subprocess, then reads the numbers the report shows
(``summary.md`` and the HTML leaderboard) and checks them against the metric tables the
metrics stage wrote (``metrics/overall.csv``), and the echo run against figures worked out by
hand from its dataset.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import vlmhb_cmd, write_png

from vlmhb.data import SynthConfig, synthesize
from vlmhb.run.files import METRICS_DIR, METRICS_JSON, RUN_JSON, metrics_table

LEADERBOARD = ("Exact match [95% CI]", "exact_match"), ("ANLS [95% CI]", "anls")
CER = ("CER [95% CI]", "cer_micro")


class _Leaderboard(HTMLParser):
    """The rows of ``table#leaderboard``: header -> (cell text, data-v)."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows: dict[str, list[tuple[str, str]]] = {}
        self._where = ""
        self._run = ""
        self._value = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id") == "leaderboard":
            self._where = "table"
        elif self._where and tag == "th":
            self._where, self._text = "th", []
        elif self._where and tag == "tr" and found.get("data-run"):
            self._run = str(found["data-run"])
            self.rows[self._run] = []
        elif self._where and tag == "td":
            self._where, self._text, self._value = "td", [], str(found.get("data-v", ""))

    def handle_data(self, data: str) -> None:
        if self._where in ("th", "td"):
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._where == "th":
            self.headers.append("".join(self._text))
            self._where = "table"
        elif tag == "td" and self._where == "td":
            # a cell may break its CI onto a second line (<br>): read it as one spaced line
            shown = " ".join(part.strip() for part in self._text if part.strip())
            self.rows[self._run].append((shown, self._value))
            self._where = "table"
        elif tag == "table":
            self._where = ""


def leaderboard_html(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    parser = _Leaderboard()
    parser.feed(path.read_text("utf-8"))
    return {
        run: dict(zip(parser.headers, cells, strict=True)) for run, cells in parser.rows.items()
    }


def summary_rows(path: Path) -> list[dict[str, str]]:
    """The Markdown leaderboard of summary.md as dicts (header -> cell)."""
    lines = path.read_text("utf-8").split("## Leaderboard", 1)[1].strip().splitlines()
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines))  # first table
    split = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table]
    return [dict(zip(split[0], row, strict=True)) for row in split[2:]]


def overall(run_dir: Path) -> dict[str, dict[str, float]]:
    with (run_dir / metrics_table("overall", "csv")).open(encoding="utf-8") as handle:
        return {
            row["metric"]: {k: float(row[k] or "nan") for k in ("value", "ci_low", "ci_high")}
            for row in csv.DictReader(handle)
        }


def shown(metric: dict[str, float]) -> str:
    """How the report should print a value with its CI, formatted here independently."""
    main = f"{metric['value']:.3f}"
    low, high = metric["ci_low"], metric["ci_high"]
    if not (math.isfinite(low) and math.isfinite(high)) or low == high:
        return main
    return f"{main} [{low:.3f}–{high:.3f}]"


def run_cli(plan: Path, tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    runs, out = tmp_path / "runs", tmp_path / "out" / "report.html"
    done = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--report", str(out), *extra),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_json,) = runs.glob(f"*/{RUN_JSON}")
    return run_json.parent, out


def check_report_against_tables(run_dir: Path, report: Path, label: str) -> dict:
    """The report's leaderboard (Markdown and HTML) shows what metrics/overall.csv holds."""
    table = overall(run_dir)
    run_id = run_dir.name
    (row,) = [r for r in summary_rows(report.with_name("summary.md")) if r["Model"] == label]
    html = leaderboard_html(report)[run_id]
    for header, metric in (*LEADERBOARD, CER):
        assert row[header] == shown(table[metric]), header
        text, value = html[header]
        assert text == shown(table[metric]), header
        assert float(value) == pytest.approx(table[metric]["value"]), header
    summary = json.loads((run_dir / METRICS_DIR / METRICS_JSON).read_text("utf-8"))
    assert summary["overall"]["exact_match"] == pytest.approx(table["exact_match"]["value"])
    assert summary["higher_is_better"]["exact_match"] is True
    assert summary["higher_is_better"]["cer_micro"] is False
    return row


# surname/name per document; the echo backend answers each field with its own name, so a
# sample is exact exactly when its reference equals the field name.
ECHO_DOCS = [
    {"surname": "surname", "name": "name"},
    {"surname": "surname", "name": "game"},
    {"surname": "surnames", "name": "name"},
    {"surname": "xyz", "name": "name"},
]


def test_echo_plan_to_report(tmp_path: Path, write_plan) -> None:
    root = tmp_path / "ds"
    lines = []
    for i, fields in enumerate(ECHO_DOCS):
        write_png(root / "images" / f"d{i}.png", f"d{i}")
        line = {"id": f"d{i}", "image": f"images/d{i}.png", "doc_type": "passport"}
        lines.append(json.dumps({**line, "fields": fields}) + "\n")
    (root / "annotations.jsonl").write_text("".join(lines), "utf-8")
    plan = write_plan(
        [
            {
                "name": "echo e2e",
                "dataset": "ds",
                "backend": "echo",
                "model": "echo-m",
                "stages": "infer,eval,report",
                "load": {"answer_field": True},
            }
        ]
    )
    run_dir, report = run_cli(plan, tmp_path, "--isolation", "local")
    table = overall(run_dir)
    assert table["exact_match"]["value"] == pytest.approx(5 / 8)  # by hand from ECHO_DOCS
    with (run_dir / metrics_table("by_field", "csv")).open(encoding="utf-8") as handle:
        by_field = {
            r["field"]: float(r["value"])
            for r in csv.DictReader(handle)
            if r["metric"] == "exact_match"
        }
    assert by_field == {"surname": pytest.approx(0.5), "name": pytest.approx(0.75)}
    row = check_report_against_tables(run_dir, report, "echo-m")
    assert row["Docs"] == "4" and row["Status"] == "done"


def test_tesseract_plan_to_report(tmp_path: Path, write_plan) -> None:
    synthesize(tmp_path / "ds", SynthConfig(kinds=("passport",), n=2, seed=3), workers=1)
    plan = write_plan(
        [
            {
                "name": "tesseract e2e",
                "dataset": "ds",
                "backend": "tesseract",
                "model": "tesseract-rus",
                "mode": "field",
                "stages": "infer,eval,report",
            }
        ]
    )
    run_dir, report = run_cli(plan, tmp_path, "--isolation", "venv")
    record = json.loads((run_dir / RUN_JSON).read_text("utf-8"))
    assert record["env"]["isolation"] == "venv" and record["env"]["name"] == "tesseract"
    table = overall(run_dir)
    # Tesseract reads clean synthetic passports well: most fields exactly.
    assert table["exact_match"]["value"] >= 0.6
    assert 0.0 <= table["cer_micro"]["value"] < 0.3
    row = check_report_against_tables(run_dir, report, "tesseract-rus")
    assert row["Docs"] == "2" and row["Backend"] == "tesseract"
