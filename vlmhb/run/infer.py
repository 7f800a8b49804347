"""Infer one run: start its worker, stream its samples through it, keep the folder consistent.

``infer_run`` answers every sample of a prepared run not answered yet (it resumes where an
earlier attempt stopped), samples the worker's resources meanwhile, and writes ``run.json``,
``answers.jsonl`` and ``answers.csv``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vlmhb.monitor import ResourceMonitor, summarize_answers
from vlmhb.monitor.serving import serving_summary
from vlmhb.run.dispatch import Dispatcher, DispatchSettings
from vlmhb.run.folder import (
    ANSWERS,
    RESOURCES,
    RUN_JSON,
    WORKER_LOG,
    AnswerLog,
    RunRecord,
    iter_jsonl,
    read_record,
    write_answers_csv,
    write_record,
)
from vlmhb.run.isolation import ChildPython, child_python
from vlmhb.run.prepare import PreparedRun, iter_samples, new_record, write_references
from vlmhb.run.worker_process import WorkerCommand, WorkerProcess
from vlmhb.worker import protocol

TINY_MODEL_BACKENDS = frozenset({"hf", "vllm", "vllm-server"})


def ensure_local_model(prepared: PreparedRun, python: ChildPython) -> None:
    """Build the tiny test model on first use, in the run's own env (nothing is fetched)."""
    if prepared.run.model != "tiny-llava" or prepared.run.backend not in TINY_MODEL_BACKENDS:
        return
    target = Path(prepared.model)
    if (target / "config.json").is_file():
        return
    import os
    import shutil
    import subprocess

    from vlmhb.errors import WorkerError

    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}")  # built aside, then renamed
    shutil.rmtree(building, ignore_errors=True)
    result = subprocess.run(
        [str(python.python), "-m", "vlmhb.worker.tiny_model", str(building)],
        env=python.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise WorkerError(prepared.run_id, f"could not build the tiny model: {tail}")
    try:
        building.rename(target)
    except OSError:  # another run built it meanwhile
        shutil.rmtree(building, ignore_errors=True)


def worker_command(prepared: PreparedRun, python: ChildPython, gpus: str | None) -> WorkerCommand:
    """argv and environment of this run's worker."""
    extra = {"OMP_THREAD_LIMIT": "1"} if prepared.run.backend == "tesseract" else {}
    if gpus is not None:
        extra["CUDA_VISIBLE_DEVICES"] = gpus
    passed = tuple(prepared.run.load.get("pass_env", ()))
    return WorkerCommand(
        argv=[str(python.python), "-m", "vlmhb.worker"],
        env=python.environment(extra, passed=passed),
        description=python.describe(),
    )


def init_message(prepared: PreparedRun) -> protocol.Init:
    """The ``init`` message of this run's worker."""
    run = prepared.run
    load = {key: value for key, value in run.load.items() if key != "pass_env"}
    return protocol.Init(
        backend=run.backend,
        model=prepared.model,
        load=load,
        generation={"max_new_tokens": run.max_new_tokens, **run.generation},
        batch_size=run.batch_size,
    )


ProgressHook = Callable[[dict[str, Any]], None]


def infer_run(
    prepared: PreparedRun,
    *,
    gpus: str | None = None,
    on_answer: ProgressHook | None = None,
    on_monitor: Callable[[Any], None] | None = None,
    monitor_interval_s: float = 0.1,
) -> RunRecord:
    """Answer every sample of a run not answered yet; always leaves a consistent folder."""
    run_dir = prepared.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_record(run_dir) if (run_dir / RUN_JSON).is_file() else None
    record = new_record(prepared)
    python = child_python(prepared.isolation, prepared.env_name)
    record.env = python.describe()
    ensure_local_model(prepared, python)
    write_references(prepared)
    record.status = "running"
    record.started_at = previous.started_at if previous else time.time()
    write_record(run_dir, record)
    log = AnswerLog(run_dir / ANSWERS)
    monitor: Any = None  # one sampler for the whole run; it follows a restarted worker

    def watch(worker: WorkerProcess) -> None:
        nonlocal monitor
        if monitor is not None:
            monitor.follow(worker.pid)
            return
        monitor = ResourceMonitor(worker.pid, _gpu_ids(gpus), monitor_interval_s)
        monitor.start()
        if on_monitor:
            on_monitor(monitor)

    dispatcher = Dispatcher(
        worker_command(prepared, python, gpus),
        init_message(prepared),
        log,
        run_dir / WORKER_LOG,
        DispatchSettings(
            window=max(64, 2 * prepared.run.batch_size), timeout_s=prepared.run.timeout_s
        ),
        on_answer=on_answer,
        on_worker=watch,
        run_name=prepared.run_id,
    )
    started = time.monotonic()
    try:
        dispatcher.run(iter_samples(prepared))
        record.status = "done"
    except KeyboardInterrupt:
        record.status = "interrupted"
        raise
    except Exception as exc:
        record.status = "failed"
        record.error = str(exc)
        raise
    finally:
        log.close()
        wall_s = time.monotonic() - started
        stats = dispatcher.stats
        if not stats.ready and previous is not None:
            # Nothing was left to answer: the earlier attempt's figures still hold.
            record.worker, record.resources = previous.worker, previous.resources
        elif stats.ready:
            ready = stats.ready[-1]
            record.worker = {
                "backend": ready.backend,
                "versions": ready.versions,
                "device": ready.device,
                "load_s": ready.load_s,
                "restarts": stats.restarts,
                "timeouts": stats.timeouts,
            }
        record.counts.update(answered=len(log.done), errors=log.errors, answered_now=stats.answered)
        if stats.ready:
            earlier_s = (previous.resources.get("wall_s") or 0.0) if previous else 0.0
            record.resources = _finish_monitor(monitor, run_dir, wall_s + earlier_s, prepared)
        record.finished_at = time.time()
        write_record(run_dir, record)
        write_answers_csv(run_dir)
    return record


def _gpu_ids(gpus: str | None) -> list[int] | None:
    """NVML indices from a ``CUDA_VISIBLE_DEVICES`` value; None = inherit the environment's."""
    return [int(g) for g in gpus.split(",") if g.strip()] if gpus else None


def _finish_monitor(
    monitor: Any, run_dir: Path, wall_s: float, prepared: PreparedRun
) -> dict[str, Any]:
    """Stop the sampler, write ``resources.parquet`` and summarize answers and resources."""
    summary: dict[str, Any] = {"wall_s": round(wall_s, 3)}
    if monitor is not None:
        monitor.stop()
        monitor.write(run_dir / RESOURCES)
        summary.update(monitor.summary())
    summary.update(
        summarize_answers(
            iter_jsonl(run_dir / ANSWERS),
            wall_s,
            len(prepared.documents),
            energy_j=summary.get("energy_j"),
        )
    )
    summary.update(
        serving_summary(iter_jsonl(run_dir / ANSWERS), prepared.run.load.get("concurrency"))
    )
    return summary
