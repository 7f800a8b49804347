"""Tables the CLI prints: the dry-run plan, the per-run summary, the status of run folders."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmhb.run.files import ANSWERS, METRICS_DIR, METRICS_JSON, RUN_JSON

if TYPE_CHECKING:  # `vlmhb status` must not pay for importing the runner
    from vlmhb.api import PlanOutcome
    from vlmhb.run.execute import RunOutcome
    from vlmhb.run.rerun import Inferred

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
        answers = p.run_dir / ANSWERS
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


def print_preflight_notes(result: PlanOutcome) -> None:
    """To stderr: documents a run left out (``--skip-bad-documents``), rows run as one."""
    import click

    for outcome in result.runs:
        p = outcome.prepared
        if p.skipped_documents:
            click.echo(
                f"skipped {p.skipped_documents} bad document(s) of {p.dataset.root} "
                f"[{p.run.source}] (--skip-bad-documents)",
                err=True,
            )
        for source in p.same_as:
            click.echo(f"{source}: same run as {p.run.source} ({p.run_id}); run once", err=True)


def print_outcome_line(outcome: RunOutcome) -> None:
    """One line to stderr when a run ends (useful in logs without a TTY)."""
    import click

    from vlmhb.run.reuse import reuse_note

    p = outcome.prepared
    text = f"[{outcome.status}] {p.run.label} -> {p.run_dir} ({outcome.wall_s:.1f} s)"
    note = reuse_note(outcome.counts, p.run_id)
    if note:
        text += f": {note}"
    if outcome.counts.get("reused"):
        text += f" [{outcome.counts['reused']} answers reused from the cache]"
    phases = describe_timings(read_run_json(p.run_dir))
    if phases:
        text += f"\n    {phases}"
    if outcome.error:
        text += f": {outcome.error}"
    click.echo(text, err=True)


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run folder as a dict; {} when there is none (yet)."""
    try:
        return json.loads((run_dir / RUN_JSON).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def describe_timings(record: dict[str, Any]) -> str:
    """Where the infer stage's time went, and the throughput over generation only."""
    timings, resources = record.get("timings") or {}, record.get("resources") or {}
    if timings.get("generation_s") is None:
        return ""

    def seconds(key: str) -> str:
        value = timings.get(key)
        return "-" if value is None else f"{value:.2f} s"

    rate = resources.get("samples_per_s")
    tokens = resources.get("output_tokens_per_s")
    speed = f"{rate:.1f} samples/s" if rate is not None else "- samples/s"
    if tokens is not None:
        speed += f", {tokens:.0f} tok/s"
    return (
        f"env {seconds('env_prepare_s')} | start+load {seconds('worker_start_s')} | "
        f"first answer {seconds('ttfa_s')} | generation {seconds('generation_s')} "
        f"({speed}) | teardown {seconds('teardown_s')}"
    )


def print_summary(result: PlanOutcome) -> None:
    """The summary table of a finished plan, and which runs reused earlier answers."""
    from vlmhb.run.reuse import reuse_note

    table = _table(
        "vlmhb run summary",
        [
            "run",
            "backend",
            "status",
            "samples",
            "inferred now",
            "errors",
            *HEADLINE_METRICS,
            "load s",
            "gen s",
            "samples/s",
            "teardown s",
            "wall s",
        ],
    )
    reused = []
    for outcome in result.runs:
        counts = outcome.counts
        note = reuse_note(counts, outcome.prepared.run_id)
        if note:
            reused.append(f"{outcome.prepared.run.label}: {note}")
        record = read_run_json(outcome.prepared.run_dir)
        timings, resources = record.get("timings") or {}, record.get("resources") or {}
        table.add_row(
            outcome.prepared.run.label,
            outcome.prepared.run.backend,
            outcome.status,
            str(counts.get("answered", "-")),
            str(counts.get("answered_now", "-")),
            str(counts.get("errors", "-")),
            *(
                f"{outcome.overall[m]:.3f}" if m in outcome.overall else "-"
                for m in HEADLINE_METRICS
            ),
            _figure(timings.get("worker_start_s"), 1),
            _figure(timings.get("generation_s"), 2),
            _figure(resources.get("samples_per_s"), 1),
            _figure(timings.get("teardown_s"), 1),
            f"{outcome.wall_s:.1f}",
        )
    _print(table)
    for line in reused:
        print(line)
    if reused:
        print("(answers for the same run id are reused; `vlmhb run --fresh` infers them again)")
    if result.report:
        print(f"report: {result.report}")


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_inferred(results: Iterable[Inferred]) -> None:
    """``vlmhb infer``: a table of the runs whose answers were completed."""
    import click

    from vlmhb.run.reuse import reuse_note

    table = _table(
        "vlmhb infer",
        ["run folder", "status", "samples", "answered", "inferred now", "errors", "reuse"],
    )
    for item in results:
        if item.warning:
            click.echo(f"warning: {item.warning}", err=True)
        counts = item.record.counts
        table.add_row(
            str(item.run_dir),
            item.record.status,
            str(counts.get("samples", "-")),
            str(counts.get("answered", "-")),
            str(counts.get("answered_now", "-")),
            str(counts.get("errors", "-")),
            reuse_note(counts, item.record.run_id) or "-",
        )
    _print(table)


def print_status(runs_dir: Path) -> None:
    """Where each run folder stands: status, answers, metrics."""
    table = _table(
        f"Runs in {runs_dir}",
        ["run id", "model", "backend", "status", "answered", "samples", "errors", "metrics"],
    )
    for run_json in sorted(runs_dir.glob(f"*/{RUN_JSON}")):
        data = json.loads(run_json.read_text("utf-8"))
        counts = data.get("counts", {})
        scored = (run_json.parent / METRICS_DIR / METRICS_JSON).exists()
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
