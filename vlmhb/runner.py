"""Drives one evaluation run: resolve it, then infer, evaluate, as its stages say.

``prepare_run`` resolves a plan row into everything that determines its answers (dataset
content, prompts, model, backend, generation parameters) and derives the run id from them,
so a changed prompt never silently reuses old answers. ``infer_run`` streams the samples
through a worker into ``answers.jsonl``; it resumes where an earlier attempt stopped.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vlmhb
from vlmhb import protocol
from vlmhb.dispatch import Dispatcher, DispatchSettings, Sample
from vlmhb.errors import RunDirError
from vlmhb.isolation import ChildPython, child_python, env_name_for
from vlmhb.monitor import ResourceMonitor, summarize_answers
from vlmhb.plan import EvalRun
from vlmhb.rundir import (
    ANSWERS,
    REFERENCES,
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
from vlmhb.worker_process import WorkerCommand, WorkerProcess


@dataclass(frozen=True)
class PreparedRun:
    """A plan row resolved against its dataset and prompts, with its run id."""

    run: EvalRun
    run_id: str
    run_dir: Path
    dataset: Any  # vlmhb.data.Dataset
    prompts: Any  # vlmhb.prompts.PromptCollection
    model: str
    env_name: str
    documents: tuple[Any, ...]
    n_samples: int
    dataset_hash: str
    prompts_hash: str

    @property
    def isolation(self) -> str:
        """The isolation this run uses."""
        return self.run.isolation or "local"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.rsplit("/", 1)[-1]).strip("-")[:40] or "model"


def _select_documents(run: EvalRun, documents: list[Any]) -> list[Any]:
    chosen = [d for d in documents if not run.doc_types or d.doc_type in run.doc_types]
    return chosen[: run.limit] if run.limit else chosen


def _doc_fields(run: EvalRun, document: Any) -> list[str]:
    return [name for name in document.fields if not run.fields or name in run.fields]


def _resolve_model(run: EvalRun) -> str:
    from vlmhb.models import resolve_model

    try:
        return resolve_model(run.model, run.backend).model
    except (LookupError, ValueError):
        return run.model


def prepare_run(run: EvalRun, runs_root: Path) -> PreparedRun:
    """Load the dataset and prompts of a plan row and derive its run id and folder."""
    from vlmhb.data import load_dataset
    from vlmhb.prompts import load_prompts

    dataset = load_dataset(run.dataset, base=run.base_dir)
    prompts = load_prompts(run.prompts, base=run.base_dir)
    documents = _select_documents(run, dataset.documents)
    model = _resolve_model(run)
    dataset_hash, prompts_hash = dataset.content_hash(), prompts.content_hash()
    identity = {
        "dataset": dataset_hash,
        "doc_types": run.doc_types,
        "fields": run.fields,
        "limit": run.limit,
        "backend": run.backend,
        "model": model,
        "prompts": prompts_hash,
        "system_prompt": run.system_prompt,
        "mode": run.mode,
        "max_new_tokens": run.max_new_tokens,
        "load": run.load,
        "generation": run.generation,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    run_id = f"{_slug(run.model)}-{run.backend}-{digest}"
    if run.mode == "field":
        n_samples = sum(len(_doc_fields(run, d)) for d in documents)
    else:
        n_samples = len(documents)
    return PreparedRun(
        run=run,
        run_id=run_id,
        run_dir=runs_root / run_id,
        dataset=dataset,
        prompts=prompts,
        model=model,
        env_name=env_name_for(run.backend, run.model, run.env),
        documents=tuple(documents),
        n_samples=n_samples,
        dataset_hash=dataset_hash,
        prompts_hash=prompts_hash,
    )


def iter_samples(prepared: PreparedRun) -> Iterator[Sample]:
    """Every sample of the run, built lazily (memory stays flat for big datasets)."""
    run = prepared.run
    base_generation = {"max_new_tokens": run.max_new_tokens, **run.generation}
    for document in prepared.documents:
        problem = "; ".join(document.problems) if document.problems else None
        images = tuple(str(image) for image in document.images)
        fields = _doc_fields(run, document)
        targets: list[str | None] = list(fields) if run.mode == "field" else [None]
        for field_name in targets:
            rendered = prepared.prompts.render(document.doc_type, field_name, fields, run.mode)
            generation = dict(base_generation, mode=run.mode)
            if run.mode == "document":
                generation["fields"] = fields
            yield Sample(
                id=f"{document.id}:{field_name}" if field_name else str(document.id),
                doc_id=str(document.id),
                doc_type=document.doc_type,
                field=field_name,
                mode=run.mode,
                prompt=rendered.prompt,
                system=run.system_prompt or rendered.system,
                images=images,
                generation=generation,
                problem=problem,
            )


def ensure_local_model(prepared: PreparedRun, python: ChildPython) -> None:
    """Build the tiny test model on first use, in the run's own env (nothing is fetched)."""
    if prepared.run.model != "tiny-llava" or prepared.run.backend not in {"hf", "vllm"}:
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


def write_references(prepared: PreparedRun) -> Path:
    """``references.jsonl``: the ground truth of the run's documents (for the metrics stage)."""
    target = prepared.run_dir / REFERENCES
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for document in prepared.documents:
            handle.write(
                json.dumps(
                    {
                        "doc_id": str(document.id),
                        "doc_type": document.doc_type,
                        "fields": {k: v for k, v in document.fields.items()},
                        "text": document.text,
                        "tags": list(document.tags),
                        "images": [str(image) for image in document.images],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    tmp.replace(target)
    return target


def new_record(prepared: PreparedRun) -> RunRecord:
    """The initial ``run.json`` of a run."""
    run = prepared.run
    return RunRecord(
        run_id=prepared.run_id,
        plan_row=run.model_dump(mode="json", exclude={"source"}),
        source=run.source,
        dataset=str(prepared.dataset.root),
        dataset_name=prepared.dataset.name,
        dataset_hash=prepared.dataset_hash,
        prompts=run.prompts,
        prompts_hash=prepared.prompts_hash,
        backend=run.backend,
        model=run.model,
        model_path=prepared.model,
        mode=run.mode,
        metrics=list(run.metrics),
        generation={"max_new_tokens": run.max_new_tokens, **run.generation},
        isolation=prepared.isolation,
        host={
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        counts={"samples": prepared.n_samples, "documents": len(prepared.documents)},
        vlmhb_version=vlmhb.__version__,
    )


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
    return summary


def require_run_dir(run_dir: Path) -> Path:
    """Check a folder is a run folder (has ``run.json``)."""
    if not (run_dir / "run.json").is_file():
        raise RunDirError(f"{run_dir}: not a run folder (no run.json)")
    return run_dir
