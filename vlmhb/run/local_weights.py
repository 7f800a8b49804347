"""Weights built on this machine: a catalogue entry with ``build_module`` is built on first use.

The tiny test LLaVA (``tiny-llava``) is such an entry: nothing is fetched, the run's own env
runs ``python -m <build_module> PATH`` into a temporary folder beside the target, which is
then renamed into place (two runs building at once both succeed, one copy is kept).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from vlmhb.errors import WorkerError
from vlmhb.plan.catalogue import backend_name, find_spec
from vlmhb.run.isolation import ChildPython, child_python
from vlmhb.run.prepare import PreparedRun


def ensure_local_weights(prepared: PreparedRun, python: ChildPython) -> None:
    """Build the run's weights if its catalogue entry builds them locally and they are absent."""
    spec = find_spec(prepared.run.model)
    if spec is None or not spec.build_module:
        return
    if backend_name(prepared.run.backend) not in spec.backends:
        return
    target = Path(prepared.model)
    if (target / "config.json").is_file():
        return
    if spec.build_env and prepared.isolation == "venv" and spec.build_env != prepared.env_name:
        python = child_python("venv", spec.build_env)  # built (or reused) like any run's env
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    result = subprocess.run(
        [str(python.python), "-m", spec.build_module, str(building)],
        env=python.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise WorkerError(prepared.run_id, f"could not build {spec.key} locally: {tail}")
    try:
        building.rename(target)
    except OSError:  # another run built it meanwhile
        shutil.rmtree(building, ignore_errors=True)
