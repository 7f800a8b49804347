"""Isolation strategies: which Python interpreter runs a child (worker or metrics stage).

``local`` runs the child with this interpreter; ``venv`` builds or reuses the locked venv of
the run's environment (``vlmhb.envs``) and runs the child with that venv's Python. Either
way the child sees vlmhb's code through the code shim (``code_shim``) and gets a minimal
environment (``child_env``) rather than the host's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from vlmhb.errors import EnvError
from vlmhb.run.child_env import child_environment


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
