"""The report's field-validity section: how many wrong answers would a validator miss?

One table: per run, the valid-but-wrong rate and the invalid rate over typed fields (SNILS,
INN, dates, ...) with their 95 % CIs, overall and per document type, read from the metric
tables (``valid_but_wrong``, ``invalid_rate``). Runs scored before these metrics existed show
a dash.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import pandas as pd

from vlmhb.report.fmt import DASH, format_ci
from vlmhb.report.run_data import RunData

METRICS = (("valid_but_wrong", "valid but wrong"), ("invalid_rate", "invalid"))


def _cell(table: pd.DataFrame | None, metric: str, key: str | None = None, by: str = "") -> str:
    if table is None or table.empty:
        return DASH
    rows = table[table["metric"] == metric]
    if key is not None:
        rows = rows[rows[by] == key]
    if rows.empty:
        return DASH
    row = rows.iloc[0]
    return f"{format_ci(row['value'], row['ci_low'], row['ci_high'], 3)} (n={int(row['n'])})"


def _measured(table: pd.DataFrame) -> bool:
    """Whether a table holds a valid-but-wrong rate (a run with typed fields)."""
    return bool(table[table["metric"] == "valid_but_wrong"]["value"].notna().any())


def validity_rows(runs: Sequence[RunData]) -> list[list[str]]:
    """``[run, scope, valid-but-wrong, invalid]`` rows: each run overall, then per doc type."""
    rows: list[list[str]] = []
    for run in runs:
        overall = run.tables.get("overall")
        by_type = run.tables.get("by_doc_type")
        if overall is None or not _measured(overall):
            continue  # not scored for validity, or no typed field: nothing to say
        rows.append([run.label, "all typed fields", *(_cell(overall, m) for m, _ in METRICS)])
        if by_type is None:
            continue
        measured = by_type[(by_type["metric"] == "valid_but_wrong") & by_type["value"].notna()]
        typed = measured["doc_type"]
        for doc_type in sorted(set(typed.astype(str))):
            cells = (_cell(by_type, m, doc_type, "doc_type") for m, _ in METRICS)
            rows.append([run.label, str(doc_type), *cells])
    return rows


def validity_section(runs: Sequence[RunData]) -> tuple[str, str, str]:
    """The ``(anchor, nav label, html)`` of the section."""
    from vlmhb.report.html import section

    rows = validity_rows(runs)
    if rows:
        head = "".join(
            f"<th>{escape(h)}</th>"
            for h in ("Run", "Scope", "Valid but wrong [95% CI]", "Invalid [95% CI]")
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    else:
        html = '<p class="muted">No run has field-validity metrics.</p>'
    note = (
        "Share of typed-field answers (SNILS, INN, KPP, passport, dates, sex, amounts) that are "
        "wrong yet pass every format, checksum and date check: errors a production validator "
        "would let through. Invalid: wrong and caught."
    )
    return "validity", "Validity", section("validity", "Field validity", html, note)


def validity_markdown(runs: Sequence[RunData]) -> str:
    """The same table for ``summary.md`` (empty when no run has validity metrics)."""
    from vlmhb.report.markdown import markdown_table

    rows = validity_rows(runs)
    if not rows:
        return ""
    frame = pd.DataFrame(rows, columns=["Run", "Scope", "Valid but wrong", "Invalid"])
    return "\n## Field validity\n\n" + markdown_table(frame) + "\n"
