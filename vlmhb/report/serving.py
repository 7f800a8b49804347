"""The serving section: throughput and latency percentiles against concurrency, next to accuracy.

One row per streamed run (``run.json`` resources carry ``req_per_s``), grouped by sweep (runs
that differ only in their concurrency level). Within a sweep the answers of each level are
compared with those of the lowest level: with greedy decoding they should not depend on the
load, so a level whose answers differ is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import pandas as pd

from vlmhb.plan.sweep import run_level, sweep_key
from vlmhb.report.run_data import RunData
from vlmhb.report.tables import metric_value
from vlmhb.run.folder import ANSWERS, iter_jsonl

# (header, resources key or column, digits)
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("Run", "label", None),
    ("Concurrency", "concurrency", 0),
    ("Requests", "serving_requests", 0),
    ("Errors", "serving_errors", 0),
    ("req/s", "req_per_s", 2),
    ("out tok/s", "output_tok_per_s", 1),
    ("TTFT p50 (s)", "ttft_p50_s", 3),
    ("TTFT p95 (s)", "ttft_p95_s", 3),
    ("TTFT p99 (s)", "ttft_p99_s", 3),
    ("ITL p50 (s)", "itl_p50_s", 4),
    ("ITL p95 (s)", "itl_p95_s", 4),
    ("E2E p50 (s)", "e2e_p50_s", 3),
    ("E2E p95 (s)", "e2e_p95_s", 3),
    ("E2E p99 (s)", "e2e_p99_s", 3),
    ("Exact match", "exact_match", 3),
    ("Answers vs lowest level", "answers_vs_lowest", None),
)
_FIGURES = [key for _, key, digits in COLUMNS if digits is not None and key != "exact_match"]


def _answers(run: RunData) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in iter_jsonl(run.path / ANSWERS):
        key = line.get("id")
        if isinstance(key, str) and key not in found and not line.get("error"):
            found[key] = str(line.get("answer", ""))
    return found


def compare_levels(runs: Sequence[RunData]) -> dict[str, str]:
    """Per run id: ``lowest level`` for the reference, ``same`` or ``K/N differ`` for others.

    Only ids answered (without error) at both levels are compared.
    """
    ordered = sorted(runs, key=lambda r: run_level(r.record) or 0)
    reference = _answers(ordered[0])
    verdicts = {ordered[0].run_id: "lowest level"}
    for run in ordered[1:]:
        answers = _answers(run)
        common = [key for key in answers if key in reference]
        differ = sum(answers[key] != reference[key] for key in common)
        verdicts[run.run_id] = f"{differ}/{len(common)} differ" if differ else "same"
    return verdicts


def serving_table(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per streamed run, sweeps together and ordered by concurrency."""
    served = [run for run in runs if run.summary("req_per_s") is not None]
    groups: dict[str, list[RunData]] = {}
    for run in served:
        groups.setdefault(sweep_key(run.record), []).append(run)
    rows: list[dict[str, Any]] = []
    for number, members in enumerate(groups.values(), start=1):
        verdicts = compare_levels(members) if len(members) > 1 else {}
        for run in sorted(members, key=lambda r: run_level(r.record) or 0):
            row: dict[str, Any] = {"sweep": number, "run_id": run.run_id, "label": run.label}
            row.update({key: run.summary(key) for key in _FIGURES})
            row["concurrency"] = run_level(run.record)
            row["exact_match"] = metric_value(run.tables.get("overall"), "exact_match")[0]
            row["answers_vs_lowest"] = verdicts.get(run.run_id, "")
            rows.append(row)
    columns = ["sweep", "run_id", *(key for _, key, _ in COLUMNS)]
    return pd.DataFrame(rows, columns=columns)


def _text(value: Any, digits: int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if digits is None:
        return str(value)
    if digits == 0:
        return str(int(value))
    return f"{float(value):.{digits}f}"


def display_serving(table: pd.DataFrame) -> pd.DataFrame:
    """The serving table as display strings, with its headers."""
    return pd.DataFrame(
        {header: [_text(v, digits) for v in table[key]] for header, key, digits in COLUMNS}
    )


def serving_html(table: pd.DataFrame) -> str:
    """The section body: the table, and a note on how to read it."""
    if table.empty:
        return '<p class="muted">No streamed run (openai, vllm-server, sglang-server).</p>'
    shown = display_serving(table)
    head = "".join(f"<th>{escape(h)}</th>" for h in shown.columns)
    rows = []
    for (_, raw), (_, text) in zip(table.iterrows(), shown.iterrows(), strict=True):
        flagged = "differ" in str(raw["answers_vs_lowest"])
        style = ' style="background:#fde8e8"' if flagged else ""
        cells = "".join(f"<td>{escape(str(v))}</td>" for v in text)
        rows.append(f'<tr title="{escape(str(raw["run_id"]))}"{style}>{cells}</tr>')
    chart = serving_chart(table)
    drawn = ""
    if chart is not None:
        from vlmhb.report.charts import figure_html

        drawn = f'<div class="charts one">{figure_html(chart, "serving-chart")}</div>'
    return drawn + (
        f'<div class="scroll"><table id="serving"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<p class="muted">Throughput over the load window (first request sent to last answer); '
        "TTFT: time to first token; ITL: gaps between streamed chunks; E2E: request latency. "
        "Rows in red: greedy answers that differ from the lowest concurrency level.</p>"
    )


def serving_chart(table: pd.DataFrame) -> Any | None:
    """req/s and TTFT/E2E p95 against concurrency, one line per sweep (None: nothing to draw)."""
    swept = table.dropna(subset=["concurrency", "req_per_s"])
    if swept.empty:
        return None
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Throughput (req/s)", "Latency p95 (s)"))
    for _, group in swept.groupby("sweep"):
        name = str(group["label"].iloc[0]).rsplit(" c=", 1)[0]
        x = group["concurrency"]
        fig.add_trace(go.Scatter(x=x, y=group["req_per_s"], name=f"{name} req/s"), 1, 1)
        for key, dash in (("ttft_p95_s", "solid"), ("e2e_p95_s", "dot")):
            label = f"{name} {key.split('_')[0].upper()} p95"
            line = {"dash": dash}
            fig.add_trace(go.Scatter(x=x, y=group[key], name=label, line=line), 1, 2)
    fig.update_xaxes(type="log", title_text="concurrency")
    fig.update_layout(title="Load sweep", height=380, template="plotly_white")
    return fig


def serving_markdown(table: pd.DataFrame) -> list[str]:
    """Lines of summary.md's serving section (none when no run was streamed)."""
    if table.empty:
        return []
    from vlmhb.report.markdown import markdown_table

    flagged = table[table["answers_vs_lowest"].astype(str).str.contains("differ")]
    lines = ["## Serving", "", markdown_table(display_serving(table)), ""]
    if not flagged.empty:
        names = ", ".join(str(v) for v in flagged["label"])
        lines += [f"Answers differ from the lowest concurrency level: {names}.", ""]
    return lines
