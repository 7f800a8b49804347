"""``summary.md``: the leaderboard as a Markdown table, then the gaps."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from vlmhb.report.fmt import THROUGHPUT_NOTE, display_leaderboard


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a frame of strings."""
    head = "| " + " | ".join(_cell(str(c)) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join(_cell(str(v)) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


def render_summary(
    board: pd.DataFrame,
    gaps: Sequence[str],
    notes: Sequence[str] = (),
    title: str = "vlmhb report",
    serving: Sequence[str] = (),
) -> str:
    """The whole summary.md text."""
    parts = [
        f"# {title}",
        "",
        f"{len(board)} run(s). Sorted by exact match; CER is micro-averaged; "
        "CIs are bootstrap 95 % clustered by document; JSON valid is for document mode. "
        + THROUGHPUT_NOTE,
        "",
        "## Leaderboard",
        "",
        markdown_table(display_leaderboard(board)),
        "",
    ]
    parts += list(serving)  # the serving section's lines (vlmhb.report.serving), if any
    parts += ["## Gaps", ""]
    parts += [f"- {_cell(g)}" for g in gaps] if gaps else ["None: every run has every stage."]
    if notes:
        parts += ["", "## Notes", "", *[f"- {_cell(n)}" for n in notes]]
    return "\n".join(parts) + "\n"
