"""The Python twin of the CLI: ``run_plan`` runs a plan's stages, run after run.

Every CLI verb calls one function here, so notebooks and scripts get the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmhb.errors import VlmhbError
from vlmhb.run.execute import RunOutcome, execute_run, read_overall
from vlmhb.run.folder import RUN_JSON
from vlmhb.run.prepare import PreparedRun, prepare_plan

__all__ = [
    "PlanOutcome",
    "RunOutcome",
    "execute_run",
    "prepare_plan",
    "read_overall",
    "run_plan",
    "write_report",
]


@dataclass
class PlanOutcome:
    """What ``run_plan`` did: one outcome per plan row, and the report it wrote."""

    runs: list[RunOutcome]
    report: Path | None = None

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that did not end well."""
        return [r for r in self.runs if not r.ok]


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
    ray: Any = None,
) -> PlanOutcome:
    """Validate the whole plan, run it, write the report at the end.

    ``executor="local"``: runs share this machine's slots (``vlmhb.executors.local``): ``gpus``
    lists GPU ids (default: every GPU NVML sees; ``""``: CPU only), each run gets as many
    as it asks for in ``CUDA_VISIBLE_DEVICES``; ``jobs`` CPU-only runs go side by side.
    With no GPU and ``jobs=1`` the runs go row after row. ``executor="slurm"``: a Slurm job
    array through submitit (``slurm``: ``vlmhb.executors.slurm.SlurmOptions``).
    ``executor="ray"``: a Ray task per run (``ray``: ``vlmhb.executors.ray.RayOptions``).
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
    elif executor == "ray":
        from vlmhb.executors.ray import RayOptions, run_on_ray

        outcomes = run_on_ray(
            prepared, runs_dir=runs_dir, options=ray or RayOptions(), on_outcome=on_outcome
        )
    elif executor == "local":
        outcomes = _run_local(prepared, runs_dir, gpus, jobs, progress, on_outcome)
    else:
        raise VlmhbError(f"unknown executor {executor!r} (local, slurm or ray)")
    result = PlanOutcome(outcomes)
    wants_report = any("report" in p.run.stages for p in prepared)
    run_dirs = [o.prepared.run_dir for o in outcomes if (o.prepared.run_dir / RUN_JSON).exists()]
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
    from vlmhb.executors.local import default_slots, run_scheduled

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
