"""The fallback builder for hosts where uv cannot run: ``virtualenv`` + ``pip --require-hashes``.

Chosen explicitly with ``VLMHB_ENV_BUILDER=virtualenv`` (a missing uv is otherwise an error,
never a silent switch). It fills the same temp folder the uv builder would, so locking,
stamping and the atomic rename stay in ``build.py``. virtualenv's scripts carry absolute
paths, so after the install the temp path inside ``bin/`` text files is rewritten to the
final one. The env gets pip and its seed packages on top of the lockfile's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vlmhb.errors import EnvError

BUILDER_VAR = "VLMHB_ENV_BUILDER"
BUILDERS = ("uv", "virtualenv")


def chosen_builder(env: str = "-") -> str:
    """``uv`` (default) or ``virtualenv``, from ``$VLMHB_ENV_BUILDER``."""
    value = os.environ.get(BUILDER_VAR, "uv").strip() or "uv"
    if value not in BUILDERS:
        raise EnvError(env, f"${BUILDER_VAR} must be one of {', '.join(BUILDERS)}, got {value!r}")
    return value


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    text = proc.stderr.strip() or proc.stdout.strip()
    return "\n".join(text.splitlines()[-lines:])


def build_with_virtualenv(
    name: str, interpreter: Path, lockfile: Path, tmp: Path, final: Path, pip_cache: Path
) -> None:
    """Create ``tmp`` with virtualenv and install ``lockfile`` into it with pip."""
    try:
        import virtualenv  # noqa: F401  (only to fail early with a clear line)
    except ImportError as exc:
        raise EnvError(name, "virtualenv is not installed: `pip install virtualenv`") from exc
    environ = {**os.environ, "PIP_CACHE_DIR": str(pip_cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    environ.pop("VIRTUAL_ENV", None)
    made = subprocess.run(
        [sys.executable, "-m", "virtualenv", "--no-download", "--no-periodic-update",
         "--quiet", "--python", str(interpreter), str(tmp)],
        capture_output=True, text=True, check=False, env=environ,
    )  # fmt: skip
    if made.returncode != 0:
        raise EnvError(name, f"`virtualenv` failed with {interpreter}", _tail(made))
    installed = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", "--require-hashes", "--no-deps",
         "--no-input", "--quiet", "-r", str(lockfile)],
        capture_output=True, text=True, check=False, env=environ,
    )  # fmt: skip
    if installed.returncode != 0:
        raise EnvError(name, f"installing {lockfile} failed (pip)", _tail(installed))
    retarget_scripts(tmp, final)


def retarget_scripts(tmp: Path, final: Path) -> None:
    """Replace the temp folder's path by the final one in the text files of ``bin/``."""
    old, new = str(tmp).encode(), str(final).encode()
    for script in (tmp / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old in data and b"\0" not in data[:1024]:
            replacement = script.with_name(script.name + ".vlmhb-tmp")
            replacement.write_bytes(data.replace(old, new))
            replacement.chmod(script.stat().st_mode)
            os.replace(replacement, script)  # a new inode: never edit a hard-linked file
