"""The Python twin of the CLI: ``run_plan`` runs a plan's stages, run after run.

Every CLI verb calls one function here, so notebooks and scripts get the same behaviour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmhb.errors import VlmhbError
from vlmhb.plan import EvalRun, load_plan
from vlmhb.runner import PreparedRun, infer_run, prepare_run


@dataclass
class RunOutcome:
    """How one run of a plan ended."""

    prepared: PreparedRun
    status: str = "pending"  # done | failed | skipped | dry-run
    error: str | None = None
    wall_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    overall: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the run ended well."""
        return self.status in {"done", "dry-run"}


@dataclass
class PlanOutcome:
    """What ``run_plan`` did: one outcome per plan row, and the report it wrote."""

    runs: list[RunOutcome]
    report: Path | None = None

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that did not end well."""
        return [r for r in self.runs if not r.ok]


def prepare_plan(
    plan: Path | str, *, runs_dir: Path = Path("runs"), isolation: str | None = None
) -> list[PreparedRun]:
    """Validate a plan and resolve every run (datasets, prompts, run ids); touches nothing."""
    runs: list[EvalRun] = load_plan(plan, isolation=isolation)  # type: ignore[arg-type]
    return [prepare_run(run, runs_dir) for run in runs]


def read_overall(run_dir: Path) -> dict[str, float]:
    """``metrics/overall.csv`` of a run folder as {metric: value}; {} when not scored."""
    path = run_dir / "metrics" / "overall.csv"
    if not path.exists():
        return {}
    import pandas as pd

    frame = pd.read_csv(path)
    return {
        str(row.metric): float(row.value) for row in frame.itertuples() if row.value == row.value
    }


def execute_run(
    prepared: PreparedRun,
    *,
    gpus: str | None = None,
    progress: bool | None = None,
    tracker: Any = None,
) -> RunOutcome:
    """Run the stages of one prepared run; a failure is recorded, not raised.

    ``gpus`` becomes the worker's ``CUDA_VISIBLE_DEVICES`` (None: inherited). ``tracker``
    (an object with ``advance(answer)`` and ``watch(monitor)``, e.g. a line of the
    scheduler's live board) replaces the run's own progress bar.
    """
    from vlmhb.evaluate import evaluate_run
    from vlmhb.progress import Board

    outcome = RunOutcome(prepared)
    started = time.monotonic()
    stages = prepared.run.stages
    try:
        if "infer" in stages:
            with Board(False if tracker else progress) as board:
                shown = tracker or board.track(prepared, gpus)
                record = infer_run(
                    prepared,
                    gpus=gpus,
                    on_answer=shown.advance if shown else None,
                    on_monitor=shown.watch if shown else None,
                )
            outcome.counts = dict(record.counts)
        if "eval" in stages:
            if not (prepared.run_dir / "answers.jsonl").exists():
                raise VlmhbError(f"{prepared.run_dir}: no answers to evaluate; run infer first")
            evaluate_run(
                prepared.run_dir,
                metrics=list(prepared.run.metrics) or None,
                isolation=prepared.isolation,
            )
            outcome.overall = read_overall(prepared.run_dir)
        outcome.status = "done"
    except VlmhbError as exc:
        outcome.status, outcome.error = "failed", str(exc)
    outcome.wall_s = time.monotonic() - started
    return outcome


def run_plan(
    plan: Path | str,
    *,
    runs_dir: Path = Path("runs"),
    isolation: str | None = None,
    dry_run: bool = False,
    report: Path | None = None,
    gpus: str | None = None,
    progress: bool | None = None,
    on_outcome: Any = None,
    jobs: int = 1,
    executor: str = "local",
    slurm: Any = None,
) -> PlanOutcome:
    """Validate the whole plan, run it, write the report at the end.

    ``executor="local"``: runs share this machine's slots (``vlmhb.scheduler``): ``gpus``
    lists GPU ids (default: every GPU NVML sees; ``""``: CPU only), each run gets as many
    as it asks for in ``CUDA_VISIBLE_DEVICES``; ``jobs`` CPU-only runs go side by side.
    With no GPU and ``jobs=1`` the runs go row after row. ``executor="slurm"``: a Slurm job
    array through submitit (``slurm``: ``vlmhb.executors.slurm.SlurmOptions``).
    """
    prepared = prepare_plan(plan, runs_dir=runs_dir, isolation=isolation)
    if dry_run:
        return PlanOutcome([RunOutcome(p, status="dry-run") for p in prepared])
    if executor == "slurm":
        from vlmhb.executors.slurm import SlurmOptions, run_on_slurm

        outcomes = run_on_slurm(
            plan,
            prepared,
            runs_dir=runs_dir,
            isolation=isolation,
            options=slurm or SlurmOptions(),
            on_outcome=on_outcome,
        )
    elif executor == "local":
        outcomes = _run_local(prepared, runs_dir, gpus, jobs, progress, on_outcome)
    else:
        raise VlmhbError(f"unknown executor {executor!r} (local or slurm)")
    result = PlanOutcome(outcomes)
    wants_report = any("report" in p.run.stages for p in prepared)
    run_dirs = [o.prepared.run_dir for o in outcomes if (o.prepared.run_dir / "run.json").exists()]
    if wants_report and run_dirs:
        result.report = write_report(run_dirs, report or runs_dir / "report.html")
    return result


def _run_local(
    prepared: list[PreparedRun],
    runs_dir: Path,
    gpus: str | None,
    jobs: int,
    progress: bool | None,
    on_outcome: Any,
) -> list[RunOutcome]:
    from vlmhb.scheduler import default_slots, run_scheduled

    slots = default_slots(gpus, jobs)
    if slots.parallel:
        return run_scheduled(
            prepared, slots, runs_dir=runs_dir, progress=progress, on_outcome=on_outcome
        )
    outcomes = []
    for item in prepared:
        outcome = execute_run(item, gpus=None, progress=progress)
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    return outcomes


def write_report(run_dirs: list[Path], out_html: Path) -> Path:
    """Build the HTML report and ``summary.md`` beside it."""
    from vlmhb.report import build_report

    out_html.parent.mkdir(parents=True, exist_ok=True)
    result = build_report(run_dirs, out_html, out_html.with_name("summary.md"))
    return result.html
