"""Plotly figures of the report, built from the tables in ``vlmhb.report.tables``.

Each function returns a figure or None when there is nothing to draw; ``figure_html`` turns one
into a ``<div>`` (plotly.js itself is inlined once by the page).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from vlmhb.report.run_data import RunData
from vlmhb.report.tables import pareto_front, resource_series

FONT = "DejaVu Sans, Segoe UI, Arial, sans-serif"
CONFIG = {"displaylogo": False, "responsive": True}
POINTS_PER_PANEL = 10_000  # resource timelines: points per panel over all runs (page weight)


def figure_html(fig: Any, div_id: str) -> str:
    """The figure as a ``<div>`` plus its drawing script, without plotly.js."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)


def _layout(fig: Any, title: str, height: int) -> None:
    fig.update_layout(
        title=title,
        height=height,
        font={"family": FONT, "size": 12},
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        template="plotly_white",
    )


def heatmap(matrix: pd.DataFrame, title: str, metric: str = "exact match") -> Any | None:
    """Groups (rows) x runs (columns) heatmap with value, CI and n on hover."""
    import plotly.graph_objects as go

    if matrix is None or matrix.empty:
        return None
    lo, hi, n = (matrix.attrs.get(k) for k in ("ci_low", "ci_high", "n"))
    custom = None
    if lo is not None and hi is not None and n is not None:
        custom = [
            [[lo.iat[i, j], hi.iat[i, j], n.iat[i, j]] for j in range(matrix.shape[1])]
            for i in range(matrix.shape[0])
        ]
    text = [[("" if pd.isna(v) else f"{v:.2f}") for v in row] for row in matrix.to_numpy()]
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            customdata=custom,
            text=text,
            texttemplate="%{text}" if matrix.size <= 600 else None,
            colorscale="RdYlGn",
            zmin=0,
            zmax=1,
            colorbar={"title": metric},
            hovertemplate=(
                "%{y} · %{x}<br>"
                + metric
                + " %{z:.3f}"
                + (
                    " [%{customdata[0]:.3f}, %{customdata[1]:.3f}] n=%{customdata[2]}"
                    if custom
                    else ""
                )
                + "<extra></extra>"
            ),
        )
    )
    _layout(
        fig,
        title,
        max(
            320,
            60 + 28 * matrix.shape[0] + 6 * max((len(str(c)) for c in matrix.columns), default=0),
        ),
    )
    fig.update_xaxes(tickangle=-35, automargin=True)
    fig.update_yaxes(automargin=True, autorange="reversed")
    return fig


def pareto_scatter(
    board: pd.DataFrame,
    x: str,
    x_title: str,
    *,
    maximize_x: bool,
    title: str,
    maximize_y: bool = True,
) -> Any | None:
    """Exact match against ``x`` per run, every point labelled, the Pareto front as a line.

    A run with no accuracy (exact match 0, e.g. random weights) is drawn apart and never on
    the front: being fast or light while always wrong is no trade-off worth showing.
    """
    import plotly.graph_objects as go

    data = board[["label", "run_id", "exact_match", x]].dropna()
    if data.empty:
        return None
    ranked = data["exact_match"] > 0
    front = pareto_front(
        data[x].where(ranked),
        data["exact_match"].where(ranked),
        maximize_x=maximize_x,
        maximize_y=maximize_y,
    )
    data = data.assign(front=front, ranked=ranked)
    fig = go.Figure()
    groups = [
        (data["front"], "Pareto front", "star", 12),
        (data["ranked"] & ~data["front"], "dominated", "circle-open", 9),
        (~data["ranked"], "no accuracy (not ranked)", "x-thin-open", 9),
    ]
    for mask, name, symbol, size in groups:
        part = data[mask]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part[x],
                y=part["exact_match"],
                mode="markers+text",
                name=name,
                text=part["label"],
                textposition=_label_positions(part[x], data[x]),
                textfont={"size": 10},
                cliponaxis=False,
                marker={"size": size, "symbol": symbol},
                hovertemplate="%{text}<br>" + x_title + " %{x:.3g}<br>exact match %{y:.3f}"
                "<extra></extra>",
            )
        )
    line = data[data["front"]].sort_values(x)
    fig.add_trace(
        go.Scatter(
            x=line[x],
            y=line["exact_match"],
            mode="lines",
            name="front line",
            line={"dash": "dot"},
            hoverinfo="skip",
        )
    )
    _layout(fig, title, 480)
    # The legend below the plot leaves its whole width to the labelled points.
    fig.update_layout(legend={"orientation": "h", "y": -0.22, "x": 0})
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="exact match", range=[-0.03, 1.1])
    return fig


def _label_positions(values: pd.Series, every: pd.Series) -> list[str]:
    """Labels lean inwards at the edges of the axis, so none is cut off by the chart box."""
    low, high = float(every.min()), float(every.max())
    span = (high - low) or 1.0
    positions = []
    for value in values:
        where = (float(value) - low) / span
        positions.append(
            "top left" if where > 0.7 else "top right" if where < 0.3 else "top center"
        )
    return positions


def timelines(runs: Sequence[RunData]) -> Any | None:
    """Resource timelines: VRAM, GPU power, GPU utilisation, RSS, one trace per run."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = [
        ("vram_mb", "VRAM used (MB, all GPUs)"),
        ("power_w", "GPU power (W)"),
        ("sm_util", "GPU SM util (%)"),
        ("rss_mb", "RSS (MB)"),
        ("cpu_pct", "CPU (%)"),
    ]
    per_run = max(100, min(400, POINTS_PER_PANEL // max(1, len(runs))))
    series: list[tuple[RunData, pd.DataFrame]] = []
    for run in runs:
        frame = resource_series(run, max_points=per_run)
        if frame is not None:
            series.append((run, frame))
    panels = [p for p in panels if any(p[0] in s for _, s in series)]
    if not series or not panels:
        return None
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=[t for _, t in panels],
    )
    for i, (run, s) in enumerate(series):
        first = next(row for row, (col, _) in enumerate(panels, start=1) if col in s)
        for row, (col, _) in enumerate(panels, start=1):
            if col not in s:
                continue
            fig.add_trace(
                go.Scattergl(
                    x=s["t"],
                    y=s[col],
                    mode="lines",
                    name=run.label,
                    legendgroup=run.run_id,
                    showlegend=row == first,
                    line={"width": 1.2, "color": _color(i)},
                    hovertemplate=run.label + "<br>t=%{x:.0f} s: %{y:.1f}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    _layout(fig, "Resources over time", 170 * len(panels) + 120)
    fig.update_xaxes(title="seconds since start", row=len(panels), col=1)
    fig.update_layout(legend={"orientation": "h", "y": -0.08})
    return fig


def _color(i: int) -> str:
    import plotly.express as px

    palette = px.colors.qualitative.Dark24
    return palette[i % len(palette)]
