"""The Python twin of the CLI: ``run_plan`` runs a plan's stages, run after run.

Every CLI verb calls one function here, so notebooks and scripts get the same behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmhb.errors import VlmhbError
from vlmhb.run.answer_cache import cache_setting
from vlmhb.run.execute import RunOutcome, execute_run, read_overall
from vlmhb.run.folder import RUN_JSON
from vlmhb.run.prepare import PreparedRun, prepare_plan

if TYPE_CHECKING:
    from vlmhb.executors.ray import RayOptions
    from vlmhb.executors.slurm import SlurmOptions
    from vlmhb.prompt_search import SearchOutcome  # pandas, numpy: loaded only for a search

__all__ = [
    "PlanOutcome",
    "RunOutcome",
    "cache_setting",
    "execute_run",
    "prepare_plan",
    "read_overall",
    "run_plan",
    "search_prompts",
    "write_report",
]


@dataclass
class PlanOutcome:
    """What ``run_plan`` did: one outcome per plan row, and the report it wrote."""

    runs: list[RunOutcome]
    report: Path | None = None
    set_aside: list[tuple[Path, Path]] = field(default_factory=list)  # (run folder, moved to)

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
    on_outcome: Callable[[RunOutcome], None] | None = None,
    jobs: int = 1,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    skip_bad_documents: bool = False,
    fresh: bool = False,
    on_set_aside: Callable[[Path, Path], None] | None = None,
    redact: bool | None = None,
    concurrency: tuple[int, ...] | None = None,
    ray: RayOptions | None = None,
) -> PlanOutcome:
    """Validate the whole plan, run it, write the report at the end.

    ``executor="local"``: runs share this machine's slots (``vlmhb.executors.local``): ``gpus``
    lists GPU ids (default: every GPU NVML sees; ``""``: CPU only), each run gets as many
    as it asks for in ``CUDA_VISIBLE_DEVICES``; ``jobs`` CPU-only runs go side by side.
    With no GPU and ``jobs=1`` the runs go row after row. ``executor="slurm"``: a Slurm job
    array through submitit (``slurm``: ``vlmhb.executors.slurm.SlurmOptions``).
    Every problem of the plan and its data is raised (``PlanError``) before anything is
    written; ``skip_bad_documents`` leaves bad annotation lines and documents out instead.
    ``fresh``: earlier answers of these run ids are moved aside (``vlmhb.run.reuse``) and
    every sample is inferred again; ``on_set_aside(run_dir, moved_to)`` hears of each move.
    ``concurrency``: load-sweep levels for every streaming row (``vlmhb.plan.sweep``).
    ``executor="ray"``: a Ray task per run (``ray``: ``vlmhb.executors.ray.RayOptions``).
    """
    if skip_bad_documents and executor == "slurm":
        raise VlmhbError("--skip-bad-documents works with the local executor only")
    if concurrency and executor == "slurm":  # a Slurm job re-reads the plan by row index
        raise VlmhbError("--concurrency with --executor slurm: use the plan's concurrency column")
    prepared = prepare_plan(
        plan,
        runs_dir=runs_dir,
        isolation=isolation,
        skip_bad_documents=skip_bad_documents,
        dry_run=dry_run,
        concurrency=concurrency,
    )
    if dry_run:
        return PlanOutcome([RunOutcome(p, status="dry-run") for p in prepared])
    moved = _set_aside(prepared, on_set_aside) if fresh else []
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
    result = PlanOutcome(outcomes, set_aside=moved)
    wants_report = any("report" in p.run.stages for p in prepared)
    run_dirs = [o.prepared.run_dir for o in outcomes if (o.prepared.run_dir / RUN_JSON).exists()]
    if wants_report and run_dirs:
        result.report = write_report(run_dirs, report or runs_dir / "report.html", redact=redact)
    return result


def _set_aside(
    prepared: list[PreparedRun], on_set_aside: Callable[[Path, Path], None] | None
) -> list[tuple[Path, Path]]:
    from vlmhb.run.reuse import set_aside

    moved = []
    for run_dir in dict.fromkeys(p.run_dir for p in prepared):
        target = set_aside(run_dir)
        if target is not None:
            moved.append((run_dir, target))
            if on_set_aside:
                on_set_aside(run_dir, target)
    return moved


def _run_local(
    prepared: list[PreparedRun],
    runs_dir: Path,
    gpus: str | None,
    jobs: int,
    progress: bool | None,
    on_outcome: Callable[[RunOutcome], None] | None,
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


def write_report(run_dirs: list[Path], out_html: Path, redact: bool | None = None) -> Path:
    """Build the HTML report and ``summary.md`` beside it; ``redact`` None: decided per run
    (redacted unless every document is vlmhb-generated or the plan row says otherwise)."""
    from vlmhb.report import build_report

    out_html.parent.mkdir(parents=True, exist_ok=True)
    result = build_report(run_dirs, out_html, out_html.with_name("summary.md"), redact=redact)
    return result.html


def search_prompts(
    *,
    plan: Path | str | None = None,
    dataset: str | None = None,
    backend: str | None = None,
    model: str | None = None,
    candidates: tuple[str, ...] | list[str] = (),
    systems: tuple[str, ...] | list[str] = (),
    metric: str = "exact",
    confirm: float = 0.0,
    seed: int = 0,
    n_boot: int = 2000,
    runs_dir: Path = Path("runs"),
    out_dir: Path | None = None,
    isolation: str | None = None,
    cache: bool = True,
    report: bool = True,
    progress: bool | None = False,
    on_run: Any = None,
    **run_options: Any,
) -> SearchOutcome:
    """The best prompt per document type and field (``vlmhb prompts search``).

    Candidates come from ``plan`` (rows of one model differing in prompts/system prompt; a
    v0.1 ``user_config_prompt_eval.csv`` reads so) or from ``dataset``/``backend``/``model``
    with ``candidates`` (``[NAME=]SPEC``) × ``systems``; ``run_options`` are further plan
    columns (mode, limit, load, ...).
    """
    from vlmhb import prompt_search

    if plan is not None:
        spec = prompt_search.spec_from_plan(
            plan, metric=metric, confirm=confirm, seed=seed, n_boot=n_boot, isolation=isolation
        )
    else:
        if not (dataset and backend and model):
            raise VlmhbError("a prompt search needs a plan, or a dataset, a backend and a model")
        spec = prompt_search.spec_from_options(
            dataset=dataset,
            backend=backend,
            model=model,
            collections=list(candidates),
            systems=list(systems),
            metric=metric,
            confirm=confirm,
            seed=seed,
            n_boot=n_boot,
            base_dir=Path.cwd(),
            isolation=isolation,
            **run_options,
        )
    with cache_setting(cache):
        return prompt_search.search_prompts(
            spec,
            runs_dir=runs_dir,
            out_dir=out_dir,
            report=report,
            progress=progress,
            on_run=on_run,
        )
