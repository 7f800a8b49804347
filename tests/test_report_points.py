"""Report and CLI points a new user stumbled on: names, Pareto labels, throughput units, width.

The runs are the synthetic run folders of ``fixtures_runs`` (real files, as the runner writes
them); the width check opens the page in real headless Chromium at 1400 px.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, vlmhb_cmd
from fixtures_runs import DEFAULT_SPECS, RunSpec, make_runs

from vlmhb.cli.main import main
from vlmhb.report import build_report
from vlmhb.report.charts import pareto_scatter
from vlmhb.report.run_data import load_runs
from vlmhb.report.tables import leaderboard

NAMED = [
    RunSpec("tesseract-rus", "tesseract", skill=0.6, gpus=0, samples_per_s=12.0, vram_mb=0,
            extra={"name": "Tesseract (field)"}),
    RunSpec("tesseract-rus", "tesseract", mode="document", skill=0.6, gpus=0, samples_per_s=2.0,
            vram_mb=0, extra={"name": "Tesseract (document JSON)"}),
    RunSpec("tiny-llava", "hf", skill=0.0, error_rate=1.0, samples_per_s=80.0, vram_mb=300,
            extra={"name": "Tiny LLaVA (random weights)"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("points")
    others = [spec for spec in DEFAULT_SPECS if spec.backend != "tesseract"]  # ids would clash
    make_runs(root, [*NAMED, *others], n_docs=8)
    return root


def test_leaderboard_starts_with_the_run_name(runs_root: Path) -> None:
    out = build_report([runs_root / "runs"], runs_root / "out" / "report.html")
    summary = out.markdown.read_text("utf-8")
    header = next(line for line in summary.splitlines() if line.startswith("| "))
    assert header.startswith("| Run | Model |")
    assert "| Tesseract (field) | tesseract-rus |" in summary
    assert "| Tesseract (document JSON) | tesseract-rus |" in summary
    assert "Docs/s" in header and "Requests/s" in header
    assert "one field in field mode, one document in document mode" in summary


def test_docs_per_s_puts_both_modes_on_one_scale(runs_root: Path) -> None:
    board = leaderboard(load_runs([runs_root / "runs"])).set_index("label")
    field, document = board.loc["Tesseract (field)"], board.loc["Tesseract (document JSON)"]
    record = next(r for r in load_runs([runs_root / "runs"]) if r.label == "Tesseract (field)")
    samples = record.record["counts"]["samples"]
    # A field-mode request is one field: documents/s = requests/s x documents / requests.
    assert field["docs_per_s"] == pytest.approx(field["samples_per_s"] * 8 / samples)
    assert document["docs_per_s"] == pytest.approx(document["samples_per_s"])


def test_pareto_points_are_labelled_and_zero_accuracy_is_off_the_front(runs_root: Path) -> None:
    board = leaderboard(load_runs([runs_root / "runs"]))
    tiny = board.set_index("label").loc["Tiny LLaVA (random weights)"]
    assert tiny["exact_match"] == 0 and tiny["docs_per_s"] == board["docs_per_s"].max()
    fig = pareto_scatter(board, "docs_per_s", "documents/s", maximize_x=True, title="t")
    traces = {trace.name: trace for trace in fig.data}
    assert "Tiny LLaVA (random weights)" in traces["no accuracy (not ranked)"].text
    assert "Tiny LLaVA (random weights)" not in traces["Pareto front"].text
    for name in ("Pareto front", "dominated"):
        assert "text" in traces[name].mode and all(traces[name].text)


def test_leaderboard_fits_1400_px_without_horizontal_scrolling(runs_root: Path) -> None:
    from test_report_browser import CHROMIUM, Chromium

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    html = build_report([runs_root / "runs"], runs_root / "wide" / "report.html").html
    browser = Chromium()
    try:
        browser.open(html)
        browser.wait_for("document.querySelectorAll('#leaderboard tr.lb-row').length > 0")
        width = browser.evaluate("window.innerWidth")
        box = browser.evaluate(
            "(() => { const s = document.querySelector('#leaderboard').parentElement;"
            " return [s.scrollWidth, s.clientWidth]; })()"
        )
        browser.screenshot(runs_root / "wide" / "leaderboard.png")
    finally:
        browser.close()
    assert width == 1400
    assert box[0] <= box[1], f"leaderboard is {box[0]} px wide in a {box[1]} px box"


def test_cli_says_units_and_what_it_wrote(runs_root: Path, tmp_path: Path) -> None:
    top = CliRunner().invoke(main, ["--help"]).output
    commands = top.split("Commands:", 1)[1]
    assert "..." not in commands  # whole first sentences, wrapped, never cut
    run_help = CliRunner().invoke(main, ["run", "--help"]).output
    assert "minutes (60 = one hour)" in " ".join(run_help.split())
    run_dirs = sorted(p for p in (runs_root / "runs").iterdir() if (p / "run.json").exists())
    report = subprocess.run(
        vlmhb_cmd("report", str(run_dirs[0]), "-o", str(tmp_path / "r.html")),
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"and {tmp_path / 'summary.md'}" in report.stdout
    scored = [p for p in run_dirs if (p / "metrics" / "by_sample.parquet").exists()]
    compare = subprocess.run(
        vlmhb_cmd("compare", str(scored[0]), str(scored[1]), "--n-boot", "100"),
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "A (macro)" in compare.stdout and "macro averages" in compare.stdout
