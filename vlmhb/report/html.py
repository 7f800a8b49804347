"""Assemble the one self-contained HTML page: styles, scripts, plotly.js and data all inline."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from importlib import resources
from string import Template
from typing import Any

import pandas as pd

from vlmhb.report.fmt import DISPLAY, THROUGHPUT_NOTE, display_leaderboard

PAGE = Template("""<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
<script>$plotlyjs</script>
</head>
<body>
<header><h1>$title</h1><p>$subtitle</p></header>
<nav>$nav</nav>
<main>
$sections
</main>
<div id="overlay"><img alt="document"></div>
<script type="application/json" id="drill-data">$drill_json</script>
<script>$js</script>
</body>
</html>
""")


def _asset(name: str) -> str:
    return resources.files("vlmhb.report").joinpath("assets").joinpath(name).read_text("utf-8")


def script_json(data: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")  # no "</script>" or "<!--" can end the element


def section(anchor: str, title: str, body: str, note: str | None = None) -> str:
    """One titled ``<section>``."""
    extra = f'<p class="muted">{escape(note)}</p>' if note else ""
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{extra}{body}</section>'


WRAPPED_ANYWHERE = frozenset({"label", "model"})


def leaderboard_html(board: pd.DataFrame) -> str:
    """The leaderboard table, one ``tr.lb-row`` per run; cells carry a sort key."""
    shown = display_leaderboard(board)
    head = "".join(f"<th>{escape(h)}</th>" for h, *_ in DISPLAY)
    rows = []
    for (_, raw), (_, text) in zip(board.iterrows(), shown.iterrows(), strict=True):
        cells = []
        for header, col, digits, _ci in DISPLAY:
            value = raw[col if isinstance(col, str) else col[0]]
            key = "" if isinstance(value, float) and math.isnan(value) else value
            cls = ' class="num"' if digits is not None else ""
            if col in WRAPPED_ANYWHERE:
                cls = ' class="id"'  # long ids and paths may break anywhere; words do not
            shown_text, _, ci = text[header].partition(" [")
            if isinstance(col, tuple):  # one figure a line: the column stays narrow
                body = "<br>".join(escape(part) for part in shown_text.split(" / "))
            else:
                body = escape(shown_text)
            body += f'<br><span class="ci">[{escape(ci)}</span>' if ci else ""
            cells.append(f'<td{cls} data-v="{escape(str(key))}">{body}</td>')
        rows.append(
            f'<tr class="lb-row" data-run="{escape(str(raw["run_id"]))}" '
            f'title="{escape(str(raw["run_id"]))}">{"".join(cells)}</tr>'
        )
    return (
        f'<div class="scroll"><table id="leaderboard"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<p class="muted">Click a column to sort. CER is micro-averaged over characters; '
        "CIs are bootstrap 95 % clustered by document; JSON valid only for document "
        f"mode. {escape(THROUGHPUT_NOTE)}</p>"
    )


def gaps_html(gaps: Sequence[str]) -> str:
    """The gaps as a list (or a line saying there are none)."""
    if not gaps:
        return "<p>None: every run has every stage.</p>"
    return '<ul class="gaps">' + "".join(f"<li>{escape(g)}</li>" for g in gaps) + "</ul>"


def drill_controls(note: str | None) -> str:
    """The drill-down's filter bar and list container (filled by report.js)."""
    extra = f'<p class="muted">{escape(note)}</p>' if note else ""
    return (
        extra + '<div id="drill"><div class="controls">'
        '<label><input type="checkbox" class="errors-only"> errors only</label>'
        '<label>run <select class="run-select"><option value="-1">all runs</option>'
        "</select></label>"
        '<input type="search" class="query" placeholder="document id, type, tag, field…">'
        '<span class="pager"><button class="prev">◀</button><button class="next">▶</button>'
        '</span><span class="info muted"></span></div><div class="doclist"></div></div>'
    )


def render_page(
    title: str, sections: Sequence[tuple[str, str, str]], drill_data: dict[str, Any], n_runs: int
) -> str:
    """The whole page. ``sections`` are (anchor, nav label, html)."""
    from plotly.offline import get_plotlyjs

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{a}">{escape(label)}</a>' for a, label, _ in sections)
    return PAGE.substitute(
        title=escape(title),
        subtitle=escape(f"{n_runs} run(s) · generated {stamp} by vlmhb"),
        css=_asset("report.css"),
        js=_asset("report.js"),
        plotlyjs=get_plotlyjs().replace("</script", "<\\/script"),
        nav=nav,
        sections="\n".join(html for _, _, html in sections),
        drill_json=script_json(drill_data),
    )
