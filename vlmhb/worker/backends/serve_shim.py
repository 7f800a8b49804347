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

When ``VLMHB_SERVE_PARENT`` names the worker's pid, a thread watches it and SIGKILLs this
process group as soon as the worker is gone, so nothing the server spawned outlives it.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

if os.environ.get("VLMHB_SERVE_ENGINE") == "vllm":
    from vlmhb.worker.backends.vllm import cuda_available, import_vllm

    import_vllm(on_cpu=os.environ.get("VLLM_TARGET_DEVICE") == "cpu" or not cuda_available())


def _kill_own_group() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def main(argv: list[str]) -> None:
    """Run vLLM's CLI (``vllm ARGS``) or a module as ``__main__`` (``module NAME ARGS``)."""
    parent = os.environ.get("VLMHB_SERVE_PARENT")
    if parent and parent.isdigit():
        from vlmhb.worker.backends.server import watch_parent

        if os.getppid() != int(parent):
            _kill_own_group()
        watch_parent(int(parent), _kill_own_group)
    if not argv or argv[0] not in ("vllm", "module") or (argv[0] == "module" and len(argv) < 2):
        raise SystemExit("usage: serve_shim vllm ARGS... | serve_shim module NAME ARGS...")
    if argv[0] == "vllm":
        from vllm.entrypoints.cli.main import main as vllm_main

        sys.argv = ["vllm", *argv[1:]]
        vllm_main()
        return
    sys.argv = [argv[1], *argv[2:]]
    # alter_sys=False keeps this shim as __main__, so spawned children re-import the guard.
    runpy.run_module(argv[1], run_name="__main__", alter_sys=False)


if __name__ == "__main__":
    main(sys.argv[1:])
