"""``build_report``: run folders in, one self-contained HTML page and ``summary.md`` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vlmhb.run.files import BY_DOC_TYPE, BY_FIELD, BY_TAG

if TYPE_CHECKING:  # pandas and plotly load only when a report is built
    import pandas as pd

    from vlmhb.report.run_data import RunData


@dataclass(frozen=True)
class ReportResult:
    """What ``build_report`` wrote and which gaps it stated."""

    html: Path
    markdown: Path
    n_runs: int
    gaps: list[str]
    redacted: bool = False


def _chart_sections(runs: Sequence[RunData], board: pd.DataFrame) -> list[tuple[str, str, str]]:
    from vlmhb.report import charts, tables
    from vlmhb.report.html import section
    from vlmhb.run.metric_directions import higher_is_better

    # The y axis of the Pareto charts is exact match; its direction is the runs' recorded one.
    maximize_y = all(higher_is_better("exact_match", r.directions) is not False for r in runs)

    def block(figs: list[tuple[object | None, str]], empty: str, wide: bool = False) -> str:
        parts = [charts.figure_html(f, div_id) for f, div_id in figs if f is not None]
        cls = "charts" if len(parts) > 1 and not wide else "charts one"
        return (
            f'<div class="{cls}">{"".join(parts)}</div>'
            if parts
            else f'<p class="muted">{empty}</p>'
        )

    heat = block(
        [
            (
                charts.heatmap(
                    tables.metric_matrix(runs, BY_FIELD, "field"), "Exact match per field × run"
                ),
                "heat-field",
            ),
            (
                charts.heatmap(
                    tables.metric_matrix(runs, BY_DOC_TYPE, "doc_type"),
                    "Exact match per document type × run",
                ),
                "heat-doctype",
            ),
        ],
        "No run has per-field or per-document-type metrics.",
        wide=len(runs) > 10,  # one heatmap a row when there are many run columns
    )
    pareto = block(
        [
            (
                charts.pareto_scatter(
                    board,
                    "docs_per_s",
                    "documents per second (whole documents, every mode)",
                    maximize_x=True,
                    maximize_y=maximize_y,
                    title="Accuracy vs. throughput (documents/s)",
                ),
                "pareto-speed",
            ),
            (
                charts.pareto_scatter(
                    board,
                    "vram_peak_mb",
                    "peak VRAM (MB)",
                    maximize_x=False,
                    maximize_y=maximize_y,
                    title="Accuracy vs. peak VRAM",
                ),
                "pareto-vram",
            ),
        ],
        "No run has both metrics and throughput or VRAM.",
    )
    tags = block(
        [
            (
                charts.heatmap(
                    tables.metric_matrix(runs, BY_TAG, "tag"),
                    "Exact match per degradation tag × run",
                ),
                "heat-tag",
            )
        ],
        "No run has per-tag metrics.",
    )
    timeline = block([(charts.timelines(runs), "timelines")], "No run has a resources file.")
    return [
        ("heatmaps", "Heatmaps", section("heatmaps", "Accuracy per field and document type", heat)),
        (
            "pareto",
            "Pareto",
            section(
                "pareto",
                "Accuracy vs. cost (Pareto front marked)",
                pareto,
                "Stars: no other run is both more accurate and faster (or lighter). "
                "Throughput counts whole documents, so field and document mode compare; "
                "runs with no accuracy are marked apart and never on the front.",
            ),
        ),
        ("tags", "Tags", section("tags", "Accuracy per degradation tag", tags)),
        ("resources", "Resources", section("resources", "Resource timelines", timeline)),
    ]


def build_report(
    run_dirs: list[Path],
    out_html: Path,
    out_md: Path | None = None,
    *,
    max_docs: int = 5000,
    max_cells: int | None = None,
    title: str = "vlmhb report",
    redact: bool | None = None,
) -> ReportResult:
    """Read ``run_dirs`` (run folders or folders holding them), write the page and summary.

    ``out_md`` defaults to ``summary.md`` beside ``out_html``. The drill-down keeps at most
    ``max_docs`` documents (most wrong answers first) and about ``max_cells`` answer cells.
    ``redact`` (None: decided per run, see ``vlmhb.report.redact``) leaves document values
    and images out. Raises ``RunDirError`` when no run folder is found.
    """
    from vlmhb.report import tables
    from vlmhb.report.drilldown import MAX_CELLS, build_drilldown
    from vlmhb.report.html import drill_controls, gaps_html, leaderboard_html, render_page, section
    from vlmhb.report.markdown import render_summary
    from vlmhb.report.prompts import prompt_sections
    from vlmhb.report.redact import REDACTED_NOTE, redact_drilldown, should_redact
    from vlmhb.report.robustness import robustness_markdown, robustness_section
    from vlmhb.report.run_data import load_runs
    from vlmhb.report.serving import serving_html, serving_markdown, serving_table
    from vlmhb.report.validity import validity_markdown, validity_section

    runs = load_runs([Path(p) for p in run_dirs])
    board = tables.leaderboard(runs)
    gaps = tables.report_gaps(runs)
    drill = build_drilldown(
        runs, max_docs=max_docs, max_cells=MAX_CELLS if max_cells is None else max_cells
    )
    notes = [drill.note] if drill.note else []
    redacted = should_redact(runs, redact)
    if redacted:
        drill.data = redact_drilldown(drill.data)
        notes.append(REDACTED_NOTE)
    sections = [
        (
            "leaderboard-s",
            "Leaderboard",
            section("leaderboard-s", "Leaderboard", leaderboard_html(board)),
        ),
        ("gaps", f"Gaps ({len(gaps)})", section("gaps", "Gaps", gaps_html(gaps))),
    ]
    sections += _chart_sections(runs, board)
    served = serving_table(runs)
    sections.append(("serving", "Serving", section("serving", "Serving", serving_html(served))))
    sections.append(validity_section(runs))
    sections.append(robustness_section(runs))
    sections += prompt_sections(run_dirs)
    sections.append(
        (
            "drilldown",
            "Documents",
            section(
                "drilldown",
                "Per-document drill-down",
                drill_controls("; ".join(n for n in (drill.note, redacted and REDACTED_NOTE) if n)),
            ),
        )
    )

    out_html = Path(out_html)
    out_md = Path(out_md) if out_md is not None else out_html.with_name("summary.md")
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    page = render_page(title, sections, drill.data, len(runs))
    _write_atomic(out_html, page)
    summary = render_summary(board, gaps, notes, title, serving_markdown(served))
    _write_atomic(out_md, summary + validity_markdown(runs) + robustness_markdown(runs))
    return ReportResult(
        html=out_html, markdown=out_md, n_runs=len(runs), gaps=gaps, redacted=redacted
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
