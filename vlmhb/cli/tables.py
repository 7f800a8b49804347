"""Tables the CLI prints: the dry-run plan, the per-run summary, the status of run folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmhb.api import PlanOutcome
from vlmhb.run.execute import RunOutcome

HEADLINE_METRICS = ("exact_match", "anls", "cer_micro")


def _table(title: str, columns: list[str]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _print(table: Any) -> None:
    from rich.console import Console

    Console(width=160).print(table)


def print_dry_run(result: PlanOutcome) -> None:
    """What would run: one line per run, nothing touched."""
    table = _table(
        "Dry run: nothing was written",
        [
            "#",
            "run id",
            "model",
            "backend",
            "env",
            "isolation",
            "dataset",
            "docs",
            "samples",
            "answered",
        ],
    )
    for index, outcome in enumerate(result.runs, start=1):
        p = outcome.prepared
        answers = p.run_dir / "answers.jsonl"
        done = sum(1 for _ in answers.open("rb")) if answers.exists() else 0
        table.add_row(
            str(index),
            p.run_id,
            p.model,
            p.run.backend,
            p.env_name,
            p.isolation,
            p.dataset.name,
            str(len(p.documents)),
            str(p.n_samples),
            str(done),
        )
    _print(table)


def print_outcome_line(outcome: RunOutcome) -> None:
    """One line to stderr when a run ends (useful in logs without a TTY)."""
    import click

    p = outcome.prepared
    text = f"[{outcome.status}] {p.run.label} -> {p.run_dir} ({outcome.wall_s:.1f} s)"
    if outcome.counts.get("reused"):
        text += f" [{outcome.counts['reused']} answers reused from the cache]"
    if outcome.error:
        text += f": {outcome.error}"
    click.echo(text, err=True)


def print_summary(result: PlanOutcome) -> None:
    """The summary table of a finished plan."""
    table = _table(
        "vlmhb run summary",
        ["run", "backend", "status", "samples", "errors", *HEADLINE_METRICS, "wall s"],
    )
    for outcome in result.runs:
        counts = outcome.counts
        table.add_row(
            outcome.prepared.run.label,
            outcome.prepared.run.backend,
            outcome.status,
            str(counts.get("answered", "-")),
            str(counts.get("errors", "-")),
            *(
                f"{outcome.overall[m]:.3f}" if m in outcome.overall else "-"
                for m in HEADLINE_METRICS
            ),
            f"{outcome.wall_s:.1f}",
        )
    _print(table)
    if result.report:
        print(f"report: {result.report}")


def print_status(runs_dir: Path) -> None:
    """Where each run folder stands: status, answers, metrics."""
    table = _table(
        f"Runs in {runs_dir}",
        ["run id", "model", "backend", "status", "answered", "samples", "errors", "metrics"],
    )
    for run_json in sorted(runs_dir.glob("*/run.json")):
        data = json.loads(run_json.read_text("utf-8"))
        counts = data.get("counts", {})
        scored = (run_json.parent / "metrics" / "metrics.json").exists()
        table.add_row(
            data.get("run_id", run_json.parent.name),
            data.get("model", ""),
            data.get("backend", ""),
            data.get("status", "?"),
            str(counts.get("answered", 0)),
            str(counts.get("samples", "?")),
            str(counts.get("errors", 0)),
            "yes" if scored else "no",
        )
    _print(table)
