"""Many runs at once on one machine: GPU slots and a CPU budget, plain threads, no daemon.

Slots are GPU ids (``--gpus 0,1,2,3``; by default every GPU NVML sees) plus a budget of
CPU-only runs (``--jobs``). A run asks for ``EvalRun.gpu_count`` GPUs; it starts, in plan
order, once that many GPU slots are free, and its worker sees exactly those ids in
``CUDA_VISIBLE_DEVICES``. A GPU run never overtakes an earlier GPU run still waiting (a run
needing 2 GPUs is not starved by 1-GPU runs behind it); CPU runs queue the same way on the
CPU budget. With no GPU slots at all every run is a CPU run. Each run executes in its own
thread through ``vlmhb.run.execute.execute_run`` (the same code as a single run; env builds are
serialized by the env lock of ``vlmhb.envs``). A failing run is recorded and the others go
on. On Ctrl-C every run thread gets ``KeyboardInterrupt``: the runner kills its worker,
keeps the answers written, marks the run ``interrupted``; then the interrupt propagates.

Each start and end is appended to ``RUNS_DIR/scheduler.jsonl`` (run id, slots,
``CUDA_VISIBLE_DEVICES``, times, status), the record the tests check.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmhb.errors import VlmhbError
from vlmhb.run.folder import iter_jsonl

if TYPE_CHECKING:
    from vlmhb.run.execute import ExecuteRun, RunOutcome, RunTracker
    from vlmhb.run.prepare import PreparedRun
    from vlmhb.run.progress import Board

SCHEDULE_LOG = "scheduler.jsonl"
CPU_ONLY_DEVICES = ""  # what a CPU run sees in CUDA_VISIBLE_DEVICES when GPUs are managed

OnOutcome = Callable[["RunOutcome"], None]


class SchedulerError(VlmhbError):
    """A plan asks for what the slots can never give."""


@dataclass(frozen=True)
class Slots:
    """What may run at once: GPU ids, and how many CPU-only runs side by side."""

    gpus: tuple[str, ...] = ()
    jobs: int = 1

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise SchedulerError(f"--jobs must be at least 1, not {self.jobs}")
        if len(set(self.gpus)) != len(self.gpus):
            raise SchedulerError(f"--gpus names a GPU twice: {','.join(self.gpus)}")

    @property
    def parallel(self) -> bool:
        """Whether two runs could ever run at the same time."""
        return self.jobs > 1 or bool(self.gpus)


def parse_gpus(text: str | None) -> tuple[str, ...] | None:
    """``"0,1,2"`` -> ("0", "1", "2"); ``""`` or ``"none"`` -> () (CPU only); None -> None."""
    if text is None:
        return None
    if text.strip().lower() in {"", "none", "cpu"}:
        return ()
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not all(part.isdigit() or part.startswith(("GPU-", "MIG-")) for part in ids):
        raise SchedulerError(f"--gpus wants GPU ids like 0,1,2,3 (or GPU-/MIG- UUIDs): {text!r}")
    return ids


def default_slots(gpus: str | None, jobs: int = 1) -> Slots:
    """Slots from the CLI: ``--gpus`` as given, else every GPU NVML sees (none: CPU only)."""
    ids = parse_gpus(gpus)
    if ids is None:
        from vlmhb.monitor import visible_gpus

        ids = tuple(str(i) for i in visible_gpus())
    return Slots(gpus=ids, jobs=jobs)


@dataclass
class _Job:
    index: int
    prepared: PreparedRun
    need: int  # GPUs; 0 = a CPU run
    gpus: tuple[str, ...] = ()
    thread: threading.Thread | None = None
    started: float = 0.0
    outcome: RunOutcome | None = None


@dataclass
class Schedule:
    """The plan's runs and the slots; ``run()`` returns one outcome per run, in plan order."""

    prepared: Sequence[PreparedRun]
    slots: Slots
    execute: ExecuteRun | None = None
    on_outcome: OnOutcome | None = None
    on_start: Callable[[PreparedRun, str | None], None] | None = None
    board: Board | None = None
    log_path: Path | None = None
    progress: bool | None = None
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _free_gpus: list[str] = field(default_factory=list)
    _cpu_free: int = 0
    _running: dict[int, _Job] = field(default_factory=dict)

    def _needs(self, prepared: PreparedRun) -> int:
        if not self.slots.gpus:
            return 0
        need = int(prepared.run.gpu_count)
        if need > len(self.slots.gpus):
            raise SchedulerError(
                f"{prepared.run.source or prepared.run.label}: needs {need} GPUs, "
                f"only {len(self.slots.gpus)} given (--gpus {','.join(self.slots.gpus)})"
            )
        return need

    def run(self) -> list[RunOutcome]:
        """Start runs as slots free up; wait for all; Ctrl-C interrupts every run."""
        jobs = [_Job(i, p, self._needs(p)) for i, p in enumerate(self.prepared)]
        _warm_code_shim()
        self._free_gpus = list(self.slots.gpus)
        self._cpu_free = self.slots.jobs
        waiting = list(jobs)
        try:
            with self._lock:
                while waiting or self._running:
                    for job in self._startable(waiting):
                        waiting.remove(job)
                        self._start(job)
                    if waiting or self._running:
                        self._lock.wait(timeout=0.5)
        except KeyboardInterrupt:
            self._interrupt()
            raise
        return [job.outcome for job in jobs if job.outcome is not None]

    def _startable(self, waiting: list[_Job]) -> list[_Job]:
        """The runs to start now: the head of each queue (GPU, CPU) while it fits."""
        chosen: list[_Job] = []
        gpus_left, cpu_left = len(self._free_gpus), self._cpu_free
        gpu_blocked = cpu_blocked = False
        for job in waiting:
            if job.need:
                if gpu_blocked or job.need > gpus_left:
                    gpu_blocked = True
                    continue
                gpus_left -= job.need
            else:
                if cpu_blocked or cpu_left < 1:
                    cpu_blocked = True
                    continue
                cpu_left -= 1
            chosen.append(job)
        return chosen

    def _start(self, job: _Job) -> None:
        if job.need:
            job.gpus = tuple(self._free_gpus[: job.need])
            del self._free_gpus[: job.need]
        else:
            self._cpu_free -= 1
        job.started = time.time()
        self._running[job.index] = job
        job.thread = threading.Thread(
            target=self._work, args=(job,), name=f"vlmhb-run-{job.index}", daemon=True
        )
        job.thread.start()

    def _devices(self, job: _Job) -> str | None:
        if job.need:
            return ",".join(job.gpus)
        return CPU_ONLY_DEVICES if self.slots.gpus else None

    def _work(self, job: _Job) -> None:
        devices = self._devices(job)
        self._log(job, "start", devices=devices)
        if self.on_start:
            self.on_start(job.prepared, devices)
        tracker = self.board.track(job.prepared, devices) if self.board else None
        status = "failed"
        try:
            job.outcome = self._call(job, devices, tracker)
            status = job.outcome.status
        except KeyboardInterrupt:
            job.outcome = _outcome(job.prepared, "interrupted", "interrupted", job.started)
            status = "interrupted"
        except Exception as exc:  # a thread boundary: one run's bug fails it alone
            job.outcome = _outcome(
                job.prepared, "failed", f"{type(exc).__name__}: {exc}", job.started
            )
        finally:
            if tracker is not None:
                tracker.close()
            self._log(job, "end", devices=devices, status=status)
            with self._lock:
                self._free_gpus.extend(job.gpus)
                self._free_gpus.sort(key=self.slots.gpus.index)
                if not job.need:
                    self._cpu_free += 1
                self._running.pop(job.index, None)
                self._lock.notify_all()
        if self.on_outcome and status != "interrupted":
            self.on_outcome(job.outcome)

    def _call(self, job: _Job, devices: str | None, tracker: RunTracker | None) -> RunOutcome:
        execute = self.execute
        if execute is None:
            from vlmhb.run.execute import execute_run

            execute = execute_run
        return execute(job.prepared, gpus=devices, progress=self.progress, tracker=tracker)

    def _log(self, job: _Job, event: str, **extra: Any) -> None:
        if self.log_path is None:
            return
        line = {
            "event": event,
            "time": time.time(),
            "index": job.index,
            "run_id": job.prepared.run_id,
            "label": job.prepared.run.label,
            "gpus": list(job.gpus),
            **extra,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    def _interrupt(self) -> None:
        """Raise ``KeyboardInterrupt`` inside every run thread, then wait for them to stop."""
        running = [job for job in self._running.values() if job.thread is not None]
        for job in running:
            assert job.thread is not None and job.thread.ident is not None
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(job.thread.ident), ctypes.py_object(KeyboardInterrupt)
            )
        deadline = time.monotonic() + 30
        for job in running:
            assert job.thread is not None
            job.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        _kill_stray_workers()


def _warm_code_shim() -> None:
    """Create the workers' code shim once, before threads race to create it."""
    from vlmhb.run.code_shim import code_shim

    code_shim()


def _outcome(prepared: PreparedRun, status: str, error: str, started: float) -> RunOutcome:
    from vlmhb.run.execute import RunOutcome

    return RunOutcome(prepared, status=status, error=error, wall_s=time.time() - started)


def _kill_stray_workers() -> None:
    """Last resort after an interrupt: no worker of ours outlives the orchestrator."""
    try:
        import psutil
    except ImportError:
        return
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "vlmhb.worker" in " ".join(child.cmdline()):
                child.kill()


def run_scheduled(
    prepared: Sequence[PreparedRun],
    slots: Slots,
    *,
    runs_dir: Path,
    progress: bool | None = None,
    on_outcome: OnOutcome | None = None,
    execute: ExecuteRun | None = None,
) -> list[RunOutcome]:
    """Run prepared runs over the slots; one ``RunOutcome`` per run, in plan order."""
    from vlmhb.run.progress import Board

    with Board(progress) as board:
        schedule = Schedule(
            prepared,
            slots,
            execute=execute,
            on_outcome=on_outcome,
            board=board if board.enabled else None,
            log_path=runs_dir / SCHEDULE_LOG,
            progress=False if board.enabled else progress,
        )
        return schedule.run()


def read_schedule(runs_dir: Path) -> list[dict[str, Any]]:
    """The start/end events of ``RUNS_DIR/scheduler.jsonl``."""
    return list(iter_jsonl(runs_dir / SCHEDULE_LOG))
