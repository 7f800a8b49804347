"""The report's prompts section: what a prompt search found, read from ``prompt_search.json``.

Per search (one model): a field × candidate heatmap of the search-part scores, each winner
marked ★ (a win beyond the noise) or = (a tie: the difference to the runner-up has a CI
that includes zero), and a table with the winners, their differences to the runner-up and
to the default collection, and their scores on the confirm part.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

SEARCH_JSON = "prompt_search.json"


def find_searches(paths: Sequence[Path]) -> list[Path]:
    """``prompt_search.json`` files in the given folders or their direct sub-folders."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / SEARCH_JSON).is_file():
            found.append(path / SEARCH_JSON)
        elif path.is_dir():
            found.extend(sorted(path.glob(f"*/{SEARCH_JSON}")))
    return list(dict.fromkeys(p.resolve() for p in found))


def _heatmap(search: dict[str, Any], div_id: str) -> str:
    import plotly.graph_objects as go

    from vlmhb.report.charts import FONT, figure_html

    names = [c["name"] for c in search["candidates"]]
    rows = [s for s in search["selections"] if s["field"] != "(all)"] or search["selections"]
    labels = [f"{s['doc_type']} · {s['field']}" for s in rows]
    z, text = [], []
    for s in rows:
        line, marks = [], []
        for name in names:
            score = s["scores"].get(name)
            line.append(score["value"] if score else None)
            mark = ""
            if name == s["winner"]:
                mark = " ★" if s["verdict"] == "win" else " ="
            marks.append("" if score is None else f"{score['value']:.2f}{mark}")
        z.append(line)
        text.append(marks)
    metric = search["metric"]
    lower = metric in {"cer", "wer", "ned", "cer_raw"}
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn_r" if lower else "RdYlGn",
            colorbar={"title": metric},
            hovertemplate="%{y} · %{x}<br>" + metric + " %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{search['model']} [{search['backend']}]: {metric} per field × candidate",
        height=max(320, 80 + 26 * len(rows)),
        font={"family": FONT, "size": 12},
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        template="plotly_white",
    )
    fig.update_yaxes(automargin=True, autorange="reversed")
    fig.update_xaxes(automargin=True)
    return figure_html(fig, div_id)


def _delta(value: dict[str, Any] | None) -> str:
    if not value:
        return "–"
    return f"{value['value']:+.3f} [{value['low']:+.3f}, {value['high']:+.3f}]"


def _table(search: dict[str, Any]) -> str:
    head = (
        "<tr><th>document type</th><th>field</th><th>winner</th><th>verdict</th>"
        "<th>score (search)</th><th>vs runner-up</th><th>vs default</th>"
        "<th>confirm: winner</th><th>confirm: default</th><th>confirm: winner − default</th></tr>"
    )
    body = []
    default = search["default"]
    for s in search["selections"]:
        score = s["scores"][s["winner"]]
        confirm = s.get("confirm") or {}
        winner_c, default_c = confirm.get(s["winner"]), confirm.get(default)
        cells = [
            s["doc_type"],
            s["field"],
            s["winner"],
            s["verdict"],
            f"{score['value']:.3f} [{score['low']:.3f}, {score['high']:.3f}] n={score['n']}",
            f"{s['runner_up'] or '–'} {_delta(s['vs_runner_up'])}",
            f"{_delta(s['vs_default'])} {s['default_verdict']}",
            f"{winner_c['value']:.3f} (n={winner_c['n']})" if winner_c else "–",
            f"{default_c['value']:.3f} (n={default_c['n']})" if default_c else "–",
            _delta(s.get("confirm_vs_default")),
        ]
        body.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return f'<table class="prompt-search">{head}{"".join(body)}</table>'


def prompt_sections(paths: Sequence[Path]) -> list[tuple[str, str, str]]:
    """The prompts section (empty when no search lies among ``paths``)."""
    from vlmhb.report.html import section

    searches = [json.loads(p.read_text("utf-8")) for p in find_searches(paths)]
    if not searches:
        return []
    parts = []
    for index, search in enumerate(searches):
        note = (
            f"{search['dataset']}, {search['mode']} mode, metric {search['metric']}; "
            f"{search['n_search_docs']} documents to choose on, {search['n_confirm_docs']} "
            f"held out to confirm (seed {search['seed']}). ★ a win beyond the noise, "
            "= a tie (the CI of the difference to the runner-up includes zero)."
        )
        parts.append(
            f'<p class="muted">{escape(note)}</p><div class="charts one">'
            f"{_heatmap(search, f'prompt-heat-{index}')}</div>{_table(search)}"
        )
    body = "".join(parts)
    return [("prompts", "Prompts", section("prompts", "Prompt search", body))]
