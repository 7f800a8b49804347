"""Single stages on existing run folders: ``vlmhb infer`` and ``vlmhb eval``.

A run folder is self-describing: ``run.json`` keeps the resolved plan row, so inference can
be resumed and answers re-scored without the plan that made them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vlmhb.plan.plan_csv import EvalRun
from vlmhb.run.folder import RUN_JSON, RunRecord, read_record
from vlmhb.run.infer import infer_run
from vlmhb.run.lock import run_folder_lock
from vlmhb.run.prepare import prepare_run, require_run_dir


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Run folders named directly, or found one level below the given folders."""
    found: list[Path] = []
    for path in paths:
        if (path / RUN_JSON).is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.glob(f"*/{RUN_JSON}")))
    return found


def run_from_folder(run_dir: Path) -> EvalRun:
    """The plan row a run folder was made from."""
    record = read_record(require_run_dir(run_dir))
    return EvalRun.model_validate(record.plan_row)


@dataclass(frozen=True)
class Inferred:
    """One run's infer stage: its folder, its record, and a warning when the id moved."""

    run_dir: Path
    record: RunRecord
    warning: str | None = None


def infer_target(target: Path, *, runs_dir: Path, isolation: str | None) -> Iterator[Inferred]:
    """Resume a run folder's inference, or run the infer stage of every row of a plan."""
    if target.is_dir():
        run = run_from_folder(target)
        if isolation:
            run = run.model_copy(update={"isolation": isolation})
        prepared = prepare_run(run, target.parent)
        warning = None
        if prepared.run_dir.resolve() != target.resolve():
            warning = (
                f"{target} was made from other inputs; "
                f"answers for the current ones go to {prepared.run_dir}"
            )
        with run_folder_lock(prepared.run_dir):
            record = infer_run(prepared)
        yield Inferred(prepared.run_dir, record, warning)
        return
    from vlmhb.run.prepare import prepare_plan

    for prepared in prepare_plan(target, runs_dir=runs_dir, isolation=isolation):
        with run_folder_lock(prepared.run_dir):
            record = infer_run(prepared)
        yield Inferred(prepared.run_dir, record)


def eval_targets(
    paths: list[Path], *, metrics: list[str] | None, isolation: str | None
) -> Iterator[str]:
    """Score each run folder again from its saved answers."""
    from vlmhb.run.evaluate import evaluate_run

    run_dirs = find_run_dirs(paths)
    if not run_dirs:
        from vlmhb.errors import RunDirError

        raise RunDirError(f"no run folders (with run.json) in {', '.join(map(str, paths))}")
    for run_dir in run_dirs:
        record = read_record(run_dir)
        chosen = metrics or record.metrics or None
        with run_folder_lock(run_dir):
            summary = evaluate_run(run_dir, metrics=chosen, isolation=isolation or record.isolation)
        yield f"{run_dir}: scored {summary.get('n_samples', '?')} samples"
