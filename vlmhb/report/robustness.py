"""The report's robustness section: accuracy against severity per degradation, per run.

From each run's ``metrics.json`` → ``robustness`` (written by the metrics stage from documents
tagged ``clean`` and ``blur:1`` ... ``stamp:4``, see ``vlmhb.metrics._robustness``): one chart
per degradation, a line per run with its 95 % CI as error bars, and a table of robustness
scores (area under the curve relative to clean).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from vlmhb.report.fmt import DASH, format_number
from vlmhb.report.run_data import RunData


def run_ladders(runs: Sequence[RunData]) -> dict[str, dict[str, Any]]:
    """``{run label: ladders}`` from each run's ``metrics/metrics.json`` → ``robustness``."""
    out = {}
    for run in runs:
        try:
            metrics = json.loads((run.path / "metrics" / "metrics.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        ladders = metrics.get("robustness") if isinstance(metrics, dict) else None
        if isinstance(ladders, dict) and ladders.get("degradations"):
            out[run.label] = ladders
    return out


def ladder_figure(name: str, ladders: dict[str, dict[str, Any]]) -> Any | None:
    """Exact match against severity for one degradation, a line per run, CI error bars."""
    import plotly.graph_objects as go

    from vlmhb.report.charts import _layout

    fig = go.Figure()
    for label, ladder in ladders.items():
        points = ladder["degradations"].get(name, {}).get("levels")
        if not points:
            continue
        values = [p["value"] for p in points]
        fig.add_trace(
            go.Scatter(
                x=[p["level"] for p in points],
                y=values,
                mode="lines+markers",
                name=label,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [p["ci_high"] - p["value"] for p in points],
                    "arrayminus": [p["value"] - p["ci_low"] for p in points],
                },
                customdata=[[p["n"]] for p in points],
                hovertemplate="severity %{x}: %{y:.3f} (n=%{customdata[0]})<extra>"
                + escape(label)
                + "</extra>",
            )
        )
    if not fig.data:
        return None
    _layout(fig, f"{name}: exact match vs. severity", 340)
    fig.update_xaxes(title="severity (0 = clean)", dtick=1)
    fig.update_yaxes(title="exact match", range=[0, 1.02])
    return fig


def scores_table(ladders: dict[str, dict[str, Any]]) -> str:
    """Robustness score per run (mean) and per degradation, as an HTML table."""
    names = sorted({name for ladder in ladders.values() for name in ladder["degradations"]})
    head = "".join(f"<th>{escape(h)}</th>" for h in ("Run", "Robustness", *names))
    rows = []
    for label, ladder in ladders.items():
        cells = [label, format_number(ladder["score"], 3)]
        for name in names:
            score = ladder["degradations"].get(name, {}).get("score")
            cells.append(DASH if score is None else format_number(score, 3))
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def robustness_section(runs: Sequence[RunData]) -> tuple[str, str, str]:
    """The ``(anchor, nav label, html)`` of the section."""
    from vlmhb.report.charts import figure_html
    from vlmhb.report.html import section

    ladders = run_ladders(runs)
    if not ladders:
        body = (
            '<p class="muted">No run has robustness ladders (documents tagged clean and '
            "blur:1 ... stamp:4; vlmhb data synth --ladder).</p>"
        )
    else:
        names = sorted({n for ladder in ladders.values() for n in ladder["degradations"]})
        figures = [ladder_figure(name, ladders) for name in names]
        charts = "".join(
            figure_html(fig, f"ladder-{name}")
            for name, fig in zip(names, figures, strict=True)
            if fig is not None
        )
        body = scores_table(ladders) + f'<div class="charts">{charts}</div>'
    note = (
        "Exact match at each severity of each degradation (0 = the clean document), 95 % CIs. "
        "Robustness: area under the curve relative to clean (1.0 = nothing lost)."
    )
    return "robustness", "Robustness", section("robustness", "Robustness ladders", body, note)


def robustness_markdown(runs: Sequence[RunData]) -> str:
    """Robustness scores for ``summary.md`` (empty when no run has ladders)."""
    import pandas as pd

    from vlmhb.report.markdown import markdown_table

    ladders = run_ladders(runs)
    if not ladders:
        return ""
    names = sorted({n for ladder in ladders.values() for n in ladder["degradations"]})
    rows = [
        [
            label,
            format_number(ladder["score"], 3),
            *(format_number(ladder["degradations"].get(n, {}).get("score"), 3) for n in names),
        ]
        for label, ladder in ladders.items()
    ]
    frame = pd.DataFrame(rows, columns=["Run", "Robustness", *names])
    return "\n## Robustness (AUC relative to clean)\n\n" + markdown_table(frame) + "\n"
