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
from vlmhb.monitor.summary import energy_per_doc
from vlmhb.run.answer_cache import cache_for_run
from vlmhb.run.dispatch import Dispatcher, DispatchSettings
from vlmhb.run.folder import (
    ANSWERS,
    RESOURCES,
    RUN_JSON,
    WORKER_LOG,
    RunRecord,
    iter_jsonl,
    read_record,
    write_answers_csv,
    write_record,
)
from vlmhb.run.isolation import ChildPython, child_python
from vlmhb.run.local_weights import ensure_local_weights
from vlmhb.run.prepare import PreparedRun, iter_samples, new_record, write_references
from vlmhb.run.secrets import MaskedAnswerLog, mask, passed_variables, secret_values
from vlmhb.run.timings import run_timings
from vlmhb.run.worker_process import WorkerCommand, WorkerProcess
from vlmhb.worker import protocol


def worker_command(prepared: PreparedRun, python: ChildPython, gpus: str | None) -> WorkerCommand:
    """argv and environment of this run's worker."""
    extra = {"OMP_THREAD_LIMIT": "1"} if prepared.run.backend == "tesseract" else {}
    if gpus is not None:
        extra["CUDA_VISIBLE_DEVICES"] = gpus
    passed = passed_variables(prepared.run.load)  # api_key_env works without pass_env
    return WorkerCommand(
        argv=[str(python.python), "-m", "vlmhb.worker"],
        env=python.environment(extra, passed=passed),
        description=python.describe(),
    )


def init_message(prepared: PreparedRun) -> protocol.Init:
    """The ``init`` message of this run's worker."""
    run = prepared.run
    load = {key: value for key, value in run.load.items() if key != "pass_env"}
    identity = prepared.model_identity
    if identity is not None and identity.kind == "hub" and identity.revision:
        load.setdefault("revision", identity.revision)  # load exactly what the run id names
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
    cache: bool | None = None,
) -> RunRecord:
    """Answer every sample of a run not answered yet; always leaves a consistent folder.

    ``cache``: answer identical requests from the answer cache (default: on unless
    ``VLMHB_NO_CACHE`` is set); the answers reused are counted in ``run.json``.
    """
    run_dir = prepared.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_record(run_dir) if (run_dir / RUN_JSON).is_file() else None
    record = new_record(prepared)
    began = time.monotonic()
    python = child_python(prepared.isolation, prepared.env_name)
    record.env = python.describe()
    ensure_local_weights(prepared, python)
    env_prepare_s = time.monotonic() - began
    write_references(prepared)
    record.status = "running"
    record.started_at = previous.started_at if previous else time.time()
    write_record(run_dir, record)
    secrets = secret_values(prepared.run.load)
    log = MaskedAnswerLog(run_dir / ANSWERS, secrets)  # a key never reaches the disk
    cached = cache_for_run(prepared, record.env, log, on_answer, enabled=cache)
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
        DispatchSettings(timeout_s=prepared.run.timeout_s),
        on_answer=cached.remember if cached else on_answer,
        on_worker=watch,
        run_name=prepared.run_id,
    )
    try:
        samples = iter_samples(prepared)
        dispatcher.run(cached.filter(samples) if cached else samples)
        record.status = "done"
    except KeyboardInterrupt:
        record.status = "interrupted"
        raise
    except Exception as exc:
        record.status = "failed"
        record.error = mask(str(exc), secrets)
        raise
    finally:
        log.close()
        if cached:
            cached.cache.close()
            record.counts["reused"] = cached.stats.reused
        stats = dispatcher.stats
        wall_s = time.monotonic() - began
        if stats.ready or previous is None:
            record.timings = run_timings(stats, env_prepare_s, wall_s)
        if not stats.ready and previous is not None:
            # Nothing was left to answer: the earlier attempt's figures still hold.
            record.worker, record.resources = previous.worker, previous.resources
            record.timings = previous.timings
        elif stats.ready:
            ready = stats.ready[-1]
            record.worker = {
                "backend": ready.backend,
                "versions": ready.versions,
                "device": ready.device,
                "load_s": ready.load_s,
                "capacity": ready.capacity,
                "continuous": ready.continuous,
                "restarts": stats.restarts,
                "timeouts": stats.timeouts,
            }
        record.counts.update(answered=log.answered, errors=log.errors, answered_now=stats.answered)
        log.done.clear()  # the finishing passes below stream answers.jsonl; keep memory flat
        write_answers_csv(run_dir)
        if stats.ready:
            record.resources = _finish_monitor(
                monitor, run_dir, prepared, record.timings, previous.resources if previous else {}
            )
        record.finished_at = time.time()
        write_record(run_dir, record)
    return record


def _gpu_ids(gpus: str | None) -> list[int] | None:
    """NVML indices from a ``CUDA_VISIBLE_DEVICES`` value; None = inherit the environment's."""
    return [int(g) for g in gpus.split(",") if g.strip()] if gpus else None


def _finish_monitor(
    monitor: Any,
    run_dir: Path,
    prepared: PreparedRun,
    timings: dict[str, Any],
    earlier: dict[str, Any],
) -> dict[str, Any]:
    """Stop the sampler, write ``resources.parquet`` and summarize answers and resources.

    Throughput is over generation time; a resumed run adds the earlier attempts' times,
    since its answer file holds their answers too.
    """
    wall_s = (timings.get("wall_s") or 0.0) + (earlier.get("wall_s") or 0.0)
    generation_s = (timings.get("generation_s") or 0.0) + (earlier.get("generation_s") or 0.0)
    summary: dict[str, Any] = {"wall_s": round(wall_s, 3)}
    if monitor is not None:
        monitor.stop()
    # The answer passes go first: what they hold is freed before the resource table's
    # pandas comes in (peak memory is the larger of the two, not their sum).
    n_docs = len(prepared.documents)
    answers = summarize_answers(
        # Throughput and latency describe the model: answers from the cache are left out.
        (line for line in iter_jsonl(run_dir / ANSWERS) if not line.get("cached")),
        generation_s,
        n_docs,
    )
    serving = serving_summary(iter_jsonl(run_dir / ANSWERS), prepared.run.load.get("concurrency"))
    if monitor is not None:
        monitor.write(run_dir / RESOURCES)
        summary.update(monitor.summary())
    answers["energy_per_doc_j"] = energy_per_doc(summary.get("energy_j"), n_docs)
    summary.update(answers)
    summary["wall_s"] = round(wall_s, 3)
    summary.update(serving)
    return summary
