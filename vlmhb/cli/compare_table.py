"""``vlmhb compare``'s table: per-field deltas, regressions in red, on stdout."""

from __future__ import annotations

from typing import Any

from vlmhb.gate.compare import Comparison


def print_comparison(result: Comparison) -> None:
    """The comparison as a table on stdout, regressions in red."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"B - A: {result.run_b.name} vs {result.run_a.name}", title_justify="left")
    columns = ("field", "metric", "A (macro)", "B (macro)", "delta", "95% CI", "pairs", "docs")
    for column in (*columns, "verdict"):
        table.add_column(column)
    for d in result.deltas:
        style = {"regression": "bold red", "improvement": "green"}.get(d.verdict, "")
        table.add_row(
            d.field,
            d.metric,
            f"{d.mean_a:.3f}",
            f"{d.mean_b:.3f}",
            f"{d.delta:+.3f}",
            f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}]",
            str(d.n_pairs),
            str(d.n_docs),
            d.verdict.upper() if d.verdict == "regression" else d.verdict,
            style=style,
        )
    console = Console(width=160)
    console.print(table)
    console.print(
        "A and B are macro averages: the per-sample metric averaged over the paired samples "
        "(each field answer counts once; cer here is not the character-weighted cer_micro)."
    )
    if result.only_a or result.only_b:
        console.print(f"unpaired samples: {result.only_a} only in A, {result.only_b} only in B")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"{len(result.regressions)} regression(s) beyond the noise")
    print_robustness(console, result)


def print_robustness(console: Any, result: Comparison) -> None:
    """Robustness scores (area under the severity curve, relative to clean) of A and B."""
    from rich.table import Table

    from vlmhb.gate.robustness_delta import robustness_deltas

    rows = robustness_deltas(result.run_a, result.run_b)
    if not rows:
        return
    table = Table(title="Robustness (AUC relative to clean)", title_justify="left")
    for column in ("degradation", "A", "B", "delta"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.degradation,
            *("—" if v is None else f"{v:.3f}" for v in (row.score_a, row.score_b)),
            "—" if row.delta is None else f"{row.delta:+.3f}",
        )
    console.print(table)
