"""Find an absolute interpreter path for a Python version named by a recipe.

uv is always handed an absolute path (with downloads off), so the env is built on a Python
this machine already has. Looked at, in order: ``$VLMHB_PYTHON<major><minor>`` (e.g.
``VLMHB_PYTHON311``), the running interpreter's base install, pyenv versions, then
``pythonX.Y`` on ``PATH`` (pyenv shims skipped: they are scripts, not interpreters).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from vlmhb.errors import EnvError


def override_var(version: str) -> str:
    """The environment variable that pins the interpreter for ``version``."""
    return "VLMHB_PYTHON" + version.replace(".", "")


def _patch_key(path: Path) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)$", path.name)
    return tuple(int(x) for x in match.groups()) if match else (0,)


def candidates(version: str) -> list[Path]:
    """Every place an interpreter of ``version`` may be, best first (existing or not)."""
    exe = f"python{version}"
    found: list[Path] = []
    pinned = os.environ.get(override_var(version))
    if pinned:
        return [Path(pinned)]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        found.append(Path(sys.base_prefix) / "bin" / exe)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions = pyenv_root / "versions"
    if versions.is_dir():
        matches = [
            p for p in versions.glob(f"{version}.*") if re.fullmatch(r"\d+\.\d+\.\d+", p.name)
        ]
        found += [p / "bin" / exe for p in sorted(matches, key=_patch_key, reverse=True)]
    on_path = shutil.which(exe)
    if on_path and "/shims/" not in on_path:
        found.append(Path(on_path))
    found += [Path("/usr/local/bin") / exe, Path("/usr/bin") / exe]
    return found


def find_interpreter(version: str, env: str = "-") -> Path:
    """An absolute path to a Python ``version`` interpreter, or a one-line ``EnvError``."""
    for path in candidates(version):
        if path.is_file() and os.access(path, os.X_OK):
            return path.absolute()
    raise EnvError(
        env,
        f"no Python {version} interpreter found; install one (e.g. `pyenv install {version}`) "
        f"or point ${override_var(version)} at it",
    )
