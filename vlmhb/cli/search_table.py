"""The table ``vlmhb prompts search`` prints: one row per document type and field."""

from __future__ import annotations

from typing import Any

import click


def _estimate(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value.value:+.3f} [{value.low:+.3f}, {value.high:+.3f}]"


def print_search(result: Any) -> None:
    """Winners with their score, differences to runner-up and default, confirm score."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="prompt search", show_lines=False)
    for column in ("doc type", "field", "winner", "score", "vs runner-up", "vs default", "confirm"):
        table.add_column(column)
    for s in result.selections:
        score = s.scores[s.winner]
        confirm = s.confirm.get(s.winner)
        table.add_row(
            s.doc_type,
            s.field,
            f"{s.winner} ({s.verdict})",
            f"{score.value:.3f} [{score.low:.3f}, {score.high:.3f}] n={score.n}",
            f"{s.runner_up or '-'} {_estimate(s.vs_runner_up)}",
            f"{_estimate(s.vs_default)} {s.default_verdict}",
            f"{confirm.value:.3f} n={confirm.n}" if confirm else "-",
        )
    Console(width=200).print(table)
    click.echo(f"merged collection: {result.merged_json}")
    if result.merged_csv:
        click.echo(f"merged collection (v0.1 CSV): {result.merged_csv}")
    if result.report:
        click.echo(f"report: {result.report}")
