"""Runs on a Slurm cluster: one job array through submitit, one array element per run.

Each element runs ``vlmhb.run.execute.execute_run`` on a compute node (the same runner code as a
local run) against the plan and run folders on the shared filesystem; Slurm gives it its
GPUs through ``CUDA_VISIBLE_DEVICES``, which the worker inherits. Runs asking for different
GPU counts go in separate arrays (one ``--gpus-per-node`` per array). The orchestrator waits
with a progress line, cancels every element on Ctrl-C, and records each element's job id and
devices in ``RUNS_DIR/slurm.jsonl``. Runs already done (``run.json`` done, metrics written
when the run evaluates) are not submitted again; unfinished ones resume from their answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmhb.errors import VlmhbError
from vlmhb.run.files import ANSWERS, METRICS_DIR, METRICS_JSON, RUN_JSON

if TYPE_CHECKING:
    from vlmhb.run.execute import RunOutcome
    from vlmhb.run.prepare import PreparedRun

SLURM_LOG = "slurm.jsonl"
SUBMITIT_DIR = ".submitit"


class SlurmError(VlmhbError):
    """Slurm could not take the runs (submitit missing, sbatch failed, bad options)."""


@dataclass(frozen=True)
class SlurmOptions:
    """What each array element asks Slurm for."""

    partition: str | None = None
    gpus_per_run: int | None = None  # None: each run's own gpu_count
    time: str = "60"  # minutes, or [D-]HH:MM[:SS]
    cpus_per_task: int = 2
    mem: str | None = None
    array_parallelism: int = 64
    poll_s: float = 5.0

    @property
    def timeout_min(self) -> int:
        """``time`` in whole minutes (at least 1)."""
        return parse_minutes(self.time)


def parse_minutes(text: str) -> int:
    """``90``, ``1:30:00``, ``2-00:00`` -> minutes, as Slurm reads ``--time``."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise SlurmError(f"--time wants minutes or [D-]HH:MM[:SS], not {text!r}")
    days, first, second, third = match.groups()
    if days is None and second is None:
        minutes = float(first)
    elif third is not None or days is not None:
        minutes = int(first) * 60 + int(second or 0) + int(third or 0) / 60
    else:
        minutes = int(first) + int(second) / 60  # MM:SS
    minutes += int(days or 0) * 24 * 60
    return max(1, round(minutes))


def run_element(plan: str, index: int, runs_dir: str, isolation: str | None) -> dict[str, Any]:
    """One array element, on the compute node: run row ``index`` of the plan."""
    from vlmhb.run.execute import execute_run
    from vlmhb.run.prepare import prepare_plan

    prepared = prepare_plan(plan, runs_dir=Path(runs_dir), isolation=isolation)[index]
    outcome = execute_run(prepared, gpus=None, progress=False)
    return {
        "run_id": prepared.run_id,
        "status": outcome.status,
        "error": outcome.error,
        "wall_s": outcome.wall_s,
        "counts": outcome.counts,
        "overall": outcome.overall,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "host": os.uname().nodename,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def is_finished(prepared: PreparedRun) -> bool:
    """Whether a run needs no more work: answers done and, if it evaluates, metrics written."""
    record_path = prepared.run_dir / RUN_JSON
    if not record_path.exists():
        return False
    if json.loads(record_path.read_text("utf-8")).get("status") != "done":
        return False
    if "eval" in prepared.run.stages:
        return (prepared.run_dir / METRICS_DIR / METRICS_JSON).exists()
    return True


def _executor(folder: Path, options: SlurmOptions, gpus: int) -> Any:
    try:
        import submitit
    except ImportError as exc:
        raise SlurmError("--executor slurm needs submitit: pip install submitit") from exc
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_python=sys.executable)
    params: dict[str, Any] = {
        "name": "vlmhb",
        "timeout_min": options.timeout_min,
        "cpus_per_task": options.cpus_per_task,
        "slurm_array_parallelism": options.array_parallelism,
    }
    if gpus:
        params["gpus_per_node"] = gpus
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.mem:
        params["slurm_mem"] = options.mem
    executor.update_parameters(**params)
    return executor


def _answered(prepared: PreparedRun) -> int:
    path = prepared.run_dir / ANSWERS
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def skip_finished(
    prepared: Sequence[PreparedRun], executor: str, say: Callable[[str], None]
) -> tuple[list[RunOutcome | None], list[int]]:
    """Outcomes of the runs already done (not submitted again), and the indices left to run."""
    from vlmhb.run.execute import read_overall

    outcomes: list[RunOutcome | None] = [None] * len(prepared)
    todo: list[int] = []
    for index, item in enumerate(prepared):
        if is_finished(item):
            outcomes[index] = _outcome(item, "done", overall=read_overall(item.run_dir))
            say(f"{executor}: {item.run.label}: already done, not submitted")
        else:
            todo.append(index)
    return outcomes, todo


def _outcome(prepared: PreparedRun, status: str, **values: Any) -> RunOutcome:
    from vlmhb.run.execute import RunOutcome

    return RunOutcome(prepared, status=status, **values)


def _collect(job: Any, prepared: PreparedRun) -> tuple[RunOutcome, dict[str, Any]]:
    """The outcome of one finished element, and what ``slurm.jsonl`` keeps of it."""
    entry: dict[str, Any] = {"run_id": prepared.run_id, "job_id": job.job_id}
    try:
        result = job.result()
    except Exception as exc:  # submitit raises its own job errors, varied
        tail = str(exc).strip().splitlines()[-3:]
        entry.update(status="failed", error=" | ".join(tail))
        return _outcome(prepared, "failed", error=entry["error"]), entry
    entry.update(result)
    if result.get("run_id") != prepared.run_id:
        error = f"the node resolved run {result.get('run_id')}, not {prepared.run_id}"
        entry.update(status="failed", error=error)
        return _outcome(prepared, "failed", error=error), entry
    outcome = _outcome(
        prepared,
        result["status"],
        error=result.get("error"),
        wall_s=float(result.get("wall_s", 0.0)),
        counts=dict(result.get("counts", {})),
        overall=dict(result.get("overall", {})),
    )
    return outcome, entry


def run_on_slurm(
    plan: Path | str,
    prepared: Sequence[PreparedRun],
    *,
    runs_dir: Path,
    isolation: str | None,
    options: SlurmOptions,
    on_outcome: Callable[[RunOutcome], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Submit the unfinished runs as job arrays, wait, and return one outcome per run."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    runs_dir = runs_dir.resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    plan_path = str(Path(plan).resolve())
    outcomes, todo = skip_finished(prepared, "slurm", say)
    groups: dict[int, list[int]] = {}
    for index in todo:
        item = prepared[index]
        gpus = options.gpus_per_run if options.gpus_per_run is not None else item.run.gpu_count
        groups.setdefault(gpus, []).append(index)
    jobs: dict[int, Any] = {}
    try:
        for gpus, indices in groups.items():
            executor = _executor(runs_dir / SUBMITIT_DIR, options, gpus)
            arguments = [(plan_path, i, str(runs_dir), isolation) for i in indices]
            try:
                submitted = executor.map_array(run_element, *zip(*arguments, strict=True))
            except Exception as exc:  # sbatch errors surface as varied types
                raise SlurmError(f"sbatch refused the runs: {exc}") from exc
            jobs.update(zip(indices, submitted, strict=True))
            say(
                f"slurm: submitted {len(indices)} run(s) with {gpus} GPU(s) each as "
                f"{submitted[0].job_id.split('_')[0]}"
            )
        _wait(jobs, prepared, options.poll_s, say)
    except KeyboardInterrupt:
        for job in jobs.values():
            job.cancel(check=False)
        say("slurm: interrupted; cancelled every element (answers written so far are kept)")
        raise
    with (runs_dir / SLURM_LOG).open("a", encoding="utf-8") as log:
        for index, job in jobs.items():
            outcome, entry = _collect(job, prepared[index])
            outcomes[index] = outcome
            log.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
            if on_outcome:
                on_outcome(outcome)
    return [outcome for outcome in outcomes if outcome is not None]


def _queue_states() -> dict[str, str]:
    """``squeue``'s view (array elements expanded): job id -> state; {} if it cannot answer."""
    try:
        result = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, check=False
        )
    except OSError:
        return {}
    pairs = (line.split() for line in result.stdout.splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _state(job: Any, queue: dict[str, str]) -> str:
    """A job's state from submitit (sacct), else squeue, else whether its result exists."""
    state = str(job.state)
    if state != "UNKNOWN":
        return state
    if job.job_id in queue:
        return queue[job.job_id]
    return "ENDED" if job.done() else "UNKNOWN"


def _wait(
    jobs: dict[int, Any], prepared: Sequence[PreparedRun], poll_s: float, say: Callable[[str], None]
) -> None:
    """Poll until every element has ended; say so whenever the picture changes."""
    total = sum(prepared[i].n_samples for i in jobs)
    last = ""
    while True:
        queue = _queue_states()
        states = Counter(_state(job, queue) for job in jobs.values())
        done = all(job.done() for job in jobs.values())
        answered = sum(_answered(prepared[i]) for i in jobs)
        text = ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
        line = f"slurm: {text}; {answered}/{total} samples answered"
        if line != last:
            say(line)
            last = line
        if done:
            return
        time.sleep(poll_s)
