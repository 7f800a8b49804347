"""Runs on a Ray cluster (a fleet of GPU pods): one Ray task per run.

Each task asks Ray for the run's GPUs (``num_gpus``) and CPUs and calls
``vlmhb.run.execute.execute_run`` on whatever node it lands (the same runner code as a local run;
the node builds or reuses the run's locked env in its own ``VLMHB_HOME``). Ray hands the task its
GPUs in ``CUDA_VISIBLE_DEVICES``, which the worker inherits.

Storage contract: ``RUNS_DIR``, the plan's datasets and prompts lie on storage every node
mounts at the same path (a pod's network volume, NFS). Run folders are written in place, so
results are where the user reads them the moment each answer is flushed; nothing is shipped
back. A lost node makes Ray retry its task (``max_retries``); the retry resumes from the run's
append-only ``answers.jsonl`` (0 lost, 0 duplicated). A retry first takes the run's attempt
lock (``RUNS_DIR/.ray-locks/<run id>.lock``), so it never writes beside a previous attempt
that is still alive.

Runs already finished are not submitted again. Tasks are submitted in plan order (Ray queues
them so). On Ctrl-C or SIGTERM the driver cancels every task (the runner on each node kills its
worker and marks the run ``interrupted``), then force-kills what has not stopped. Each
attempt's start (node, host, pid, devices) and each run's end are appended to
``RUNS_DIR/ray.jsonl``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from vlmhb.errors import VlmhbError

RAY_LOG = "ray.jsonl"
LOCKS_DIR = ".ray-locks"
# "0": a driver keeps 127.0.0.1 as is (else Ray rewrites it to the machine's address)
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayError(VlmhbError):
    """Ray could not take the runs (ray missing, no cluster, a run no node can hold)."""


@dataclass(frozen=True)
class RayOptions:
    """How the driver reaches the cluster and what each task asks for."""

    address: str | None = None  # None: RAY_ADDRESS, else a Ray instance started here
    cpus_per_run: float = 1.0
    max_retries: int = 3  # attempts after a node or worker is lost
    poll_s: float = 2.0
    lock_timeout_s: float = 600.0  # how long a retry waits for a previous attempt to let go
    cancel_grace_s: float = 30.0  # after a cancel, before workers are force-killed


def append_event(runs_dir: Path, entry: dict[str, Any]) -> None:
    """One line of ``RUNS_DIR/ray.jsonl`` (a single short append: whole lines, from any node)."""
    line = json.dumps({"time": time.time(), **entry}, ensure_ascii=False, default=str) + "\n"
    with (runs_dir / RAY_LOG).open("a", encoding="utf-8") as handle:
        handle.write(line)


def read_events(runs_dir: Path) -> list[dict[str, Any]]:
    """The lines of ``RUNS_DIR/ray.jsonl``."""
    path = runs_dir / RAY_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def run_task(prepared: Any, lock_timeout_s: float, cache: bool = True) -> dict[str, Any]:
    """One run, on a Ray node: take the attempt lock, execute the run, report how it ended.

    ``cache``: the driver's answer-cache setting (``--no-cache`` there), since a node's
    processes do not inherit the driver's environment.
    """
    import filelock

    from vlmhb.run.answer_cache import cache_setting
    from vlmhb.run.execute import execute_run

    runs_dir = prepared.run_dir.parent
    host = os.uname().nodename
    if not runs_dir.is_dir():
        raise RayError(
            f"{runs_dir} is not visible on node {host}: --executor ray needs RUNS_DIR on "
            "storage every node mounts at the same path"
        )
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    (runs_dir / LOCKS_DIR).mkdir(exist_ok=True)
    lock = filelock.FileLock(runs_dir / LOCKS_DIR / f"{prepared.run_id}.lock")
    try:
        lock.acquire(timeout=lock_timeout_s)
    except filelock.Timeout as exc:
        raise RayError(
            f"{prepared.run_dir}: an earlier attempt still holds the run after {lock_timeout_s} s"
        ) from exc
    try:
        import ray

        append_event(
            runs_dir,
            {
                "event": "start",
                "run_id": prepared.run_id,
                "label": prepared.run.label,
                "host": host,
                "node_id": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid(),
                "cuda_visible_devices": devices,
            },
        )
        with cache_setting(cache):
            outcome = execute_run(prepared, gpus=None, progress=False)
    finally:
        lock.release()
    return {
        "run_id": prepared.run_id,
        "status": outcome.status,
        "error": outcome.error,
        "wall_s": outcome.wall_s,
        "counts": outcome.counts,
        "overall": outcome.overall,
        "cuda_visible_devices": devices,
        "host": host,
    }


def import_ray(address: str | None) -> Any:
    """``ray``, or a clear error; a loopback address stays loopback (see ``LOOPBACK_SWITCH``)."""
    if address and is_loopback(address) and "ray" not in sys.modules:
        # Ray rewrites 127.0.0.1 to the machine's address unless told it is alone on it.
        os.environ.setdefault(LOOPBACK_SWITCH, "0")
    try:
        import ray
        from ray._private import ray_constants
    except ImportError as exc:
        raise RayError("--executor ray needs Ray: pip install 'vlmhb[ray]'") from exc
    if address and is_loopback(address) and ray_constants.ENABLE_RAY_CLUSTER:
        raise RayError(
            f"{address} is a loopback address, but Ray was imported before vlmhb could keep it "
            f"so: set {LOOPBACK_SWITCH}=0 before importing ray"
        )
    return ray


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` names this machine's loopback interface."""
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM on the driver (a pod being stopped) acts as Ctrl-C while the runs go."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _largest_node_gpus(ray: Any) -> float:
    return max(
        (float(node["Resources"].get("GPU", 0)) for node in ray.nodes() if node["Alive"]),
        default=0.0,
    )


def _outcome(prepared: Any, status: str, **values: Any) -> Any:
    from vlmhb.run.execute import RunOutcome

    return RunOutcome(prepared, status=status, **values)


def _collect(ray: Any, ref: Any, prepared: Any) -> tuple[Any, dict[str, Any]]:
    """The outcome of one ended task, and what ``ray.jsonl`` keeps of it."""
    entry: dict[str, Any] = {"event": "end", "run_id": prepared.run_id, "label": prepared.run.label}
    try:
        result = ray.get(ref)
    except Exception as exc:  # Ray wraps task errors and lost nodes in varied types
        cause = getattr(exc, "cause", None) or exc
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        entry.update(status="failed", error=lines[-1])
        return _outcome(prepared, "failed", error=entry["error"]), entry
    entry.update(result)
    outcome = _outcome(
        prepared,
        result["status"],
        error=result.get("error"),
        wall_s=float(result.get("wall_s", 0.0)),
        counts=dict(result.get("counts", {})),
        overall=dict(result.get("overall", {})),
    )
    return outcome, entry


def _cancel(ray: Any, refs: list[Any], grace_s: float) -> None:
    """Ask every task to stop (KeyboardInterrupt inside it); force-kill what outlives the grace."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=False)
    deadline = time.monotonic() + grace_s
    remaining = list(refs)
    while remaining and time.monotonic() < deadline:
        _, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.5)
    for ref in remaining:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def run_on_ray(
    prepared: Sequence[Any],
    *,
    runs_dir: Path,
    options: RayOptions,
    on_outcome: Callable[[Any], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> list[Any]:
    """Submit the unfinished runs as Ray tasks in plan order, wait, one outcome per run."""
    from vlmhb.executors.slurm import skip_finished

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    runs_dir = runs_dir.resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    # A task runs in whatever folder Ray gives it: every path it gets must be absolute.
    prepared = [replace(item, run_dir=item.run_dir.resolve()) for item in prepared]
    done, todo = skip_finished(prepared, "ray", say)
    outcomes: list[Any] = list(done)
    if not todo:
        return outcomes
    ray = import_ray(options.address)
    connected_here = not ray.is_initialized()
    if connected_here:
        try:
            ray.init(address=options.address, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayError(f"cannot reach the Ray cluster at {options.address}: {exc}") from exc
    try:
        refs = _submit(ray, prepared, todo, options)
        say(f"ray: submitted {len(todo)} run(s) to a cluster of {len(ray.nodes())} node(s)")
        with sigterm_interrupts():
            try:
                _wait(ray, refs, prepared, runs_dir, outcomes, options.poll_s, on_outcome, say)
            except KeyboardInterrupt:
                pending = [ref for i, ref in refs.items() if outcomes[i] is None]
                _cancel(ray, pending, options.cancel_grace_s)
                say("ray: interrupted; cancelled every task (answers written so far are kept)")
                raise
    finally:
        if connected_here:
            ray.shutdown()
    return outcomes


def _submit(ray: Any, prepared: Sequence[Any], todo: list[int], options: RayOptions) -> dict:
    largest = _largest_node_gpus(ray)
    for index in todo:
        need = prepared[index].run.gpu_count
        if need > largest:
            run = prepared[index].run
            raise RayError(
                f"{run.source or run.label}: needs {need} GPUs, the largest node has {largest:g}"
            )
    from vlmhb.run.answer_cache import cache_enabled

    # The task holds no GPU memory itself (its worker process does): reuse Ray's worker
    # processes rather than Ray's default of a fresh one for every GPU task.
    task = ray.remote(max_calls=0)(run_task)
    refs = {}
    for index in todo:
        item = prepared[index]
        refs[index] = task.options(
            num_gpus=item.run.gpu_count,
            num_cpus=options.cpus_per_run,
            max_retries=options.max_retries,
            retry_exceptions=False,
            name=f"vlmhb:{item.run.label}",
        ).remote(item, options.lock_timeout_s, cache_enabled())
    return refs


def _wait(
    ray: Any,
    refs: dict[int, Any],
    prepared: Sequence[Any],
    runs_dir: Path,
    outcomes: list[Any],
    poll_s: float,
    on_outcome: Callable[[Any], None] | None,
    say: Callable[[str], None],
) -> None:
    """Collect runs as they end (each reported at once); a progress line when it changes."""
    index_of = {ref: index for index, ref in refs.items()}
    pending = list(refs.values())
    total = sum(prepared[i].n_samples for i in refs)
    last = ""
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=poll_s)
        if ready and pending:  # whatever else ended meanwhile
            more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
            ready += more
        for ref in ready:
            index = index_of[ref]
            outcomes[index], entry = _collect(ray, ref, prepared[index])
            append_event(runs_dir, entry)
            if on_outcome:
                on_outcome(outcomes[index])
        answered = sum(_answered(prepared[i]) for i in refs)
        ended = len(refs) - len(pending)
        line = f"ray: {ended}/{len(refs)} runs ended; {answered}/{total} samples answered"
        if line != last:
            say(line)
            last = line


def _answered(prepared: Any) -> int:
    path = prepared.run_dir / "answers.jsonl"
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)
