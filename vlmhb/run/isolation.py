"""Isolation strategies: how a child process (worker or metrics stage) is started.

``local`` runs the child with this interpreter; ``venv`` builds or reuses the locked venv of
the run's environment (``vlmhb.envs``) and runs the child with that venv's Python. Either
way the child sees vlmhb's code through a *code shim* (a folder holding only a ``vlmhb``
symlink, on ``PYTHONPATH``), so none of the orchestrator's packages become importable in a
model env, and it gets a minimal environment rather than the host's.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import vlmhb
from vlmhb.errors import EnvError
from vlmhb.home import vlmhb_home

PASSED_VARIABLES = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ", "TERM")
PASSED_PREFIXES = (
    "CUDA_",
    "NVIDIA_",
    "HF_",
    "TRANSFORMERS_",
    "VLLM_",
    "SGLANG_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "TESSDATA_",
    "TORCH_",
    "PYTORCH_",
    "NCCL_",
    "VLMHB_",
)


@dataclass(frozen=True)
class ChildPython:
    """A Python interpreter to run a child with, and what to record about it."""

    python: Path
    isolation: str
    env_name: str | None = None
    lock_hash: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    build_s: float = 0.0
    reused: bool = True

    def environment(
        self, extra: dict[str, str] | None = None, passed: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """The environment a child started with this interpreter gets."""
        return child_environment(extra, passed, keep_pythonpath=self.isolation == "local")

    def describe(self) -> dict[str, object]:
        """The facts ``run.json`` keeps about the environment."""
        return {
            "isolation": self.isolation,
            "name": self.env_name,
            "python": str(self.python),
            "lock_hash": self.lock_hash,
            "build_s": round(self.build_s, 3),
            "reused": self.reused,
            "versions": self.versions,
        }


def code_shim() -> Path:
    """A folder whose only entry is a ``vlmhb`` symlink to this package."""
    package = Path(vlmhb.__file__).resolve().parent
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    shim = vlmhb_home() / "code" / digest
    link = shim / "vlmhb"
    if not link.exists():
        shim.mkdir(parents=True, exist_ok=True)
        tmp = shim / f".vlmhb.{os.getpid()}.{threading.get_ident()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(package, target_is_directory=True)
        os.replace(tmp, link)
    return shim


def child_environment(
    extra: dict[str, str] | None = None,
    passed: tuple[str, ...] = (),
    keep_pythonpath: bool = False,
) -> dict[str, str]:
    """A minimal environment: the variables a model process needs, nothing else.

    ``keep_pythonpath`` is for ``local`` isolation: the child is this interpreter and must see
    what the orchestrator sees, including packages reached through ``PYTHONPATH``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key in PASSED_VARIABLES or key in passed or key.startswith(PASSED_PREFIXES)
    }
    paths = [str(code_shim())]
    if keep_pythonpath and os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.setdefault("PATH", os.defpath)
    if extra:
        env.update(extra)
    return env


def env_name_for(backend: str, model: str, explicit: str | None) -> str:
    """The env a run uses: the plan's ``env``, else the catalogue's, else the backend default."""
    if explicit:
        return explicit
    from vlmhb.plan.catalogue import DEFAULT_ENVS, resolve_model

    try:
        return resolve_model(model, backend).env
    except (LookupError, ValueError):
        return DEFAULT_ENVS.get(backend, backend)


def child_python(isolation: str, env_name: str) -> ChildPython:
    """The interpreter for a child: this one (``local``) or the env's venv (``venv``)."""
    if isolation == "local":
        return ChildPython(python=Path(sys.executable), isolation="local")
    if isolation != "venv":
        raise EnvError(env_name, f"unknown isolation {isolation!r} (use venv or local)")
    try:
        from vlmhb import envs
    except ImportError as exc:  # pragma: no cover - envs ships with vlmhb
        raise EnvError(env_name, f"venv isolation unavailable: {exc}") from exc
    built = envs.ensure_env(env_name)
    return ChildPython(
        python=built.python,
        isolation="venv",
        env_name=built.name,
        lock_hash=built.lock_hash,
        versions=envs.installed_versions(built),
        build_s=built.build_s,
        reused=built.reused,
    )
