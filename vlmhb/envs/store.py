"""Where built envs live and how a finished one is recognised: the home folder and stamps.

Layout under ``$VLMHB_HOME`` (default ``~/.cache/vlmhb``)::

    envs/<name>-<lockhash12>/            a finished env (its stamp file is written last)
    envs/<name>-<lockhash12>/.vlmhb-env.json
    envs/.tmp-<name>-<lockhash12>-<pid>  a build in progress (renamed into place when done)
    envs/.locks/<name>-<lockhash12>.lock the file lock that serialises builds of one env
    uv-cache/                            uv's cache, on the same filesystem: hard links
    pip-cache/                           pip's, for the virtualenv fallback builder

An env counts as built only when its folder has the final name *and* a stamp whose lock hash
matches; a killed build leaves a ``.tmp-`` folder, never a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vlmhb.home import vlmhb_home

STAMP_NAME = ".vlmhb-env.json"
STAMP_VERSION = 1
HASH_CHARS = 12
TMP_PREFIX = ".tmp-"


def resolve_home(home: Path | str | None) -> Path:
    """``home`` as a Path, or ``vlmhb_home()`` when None."""
    return Path(home) if home else vlmhb_home()


def envs_dir(home: Path) -> Path:
    """The folder holding built envs."""
    return home / "envs"


def uv_cache_dir(home: Path) -> Path:
    """uv's cache, next to the envs so installs are hard links."""
    return home / "uv-cache"


def pip_cache_dir(home: Path) -> Path:
    """pip's cache for the virtualenv fallback builder."""
    return home / "pip-cache"


def env_key(name: str, lock_hash: str) -> str:
    """``<name>-<lockhash12>``: the folder name of one built env."""
    return f"{name}-{lock_hash[:HASH_CHARS]}"


def env_path(home: Path, name: str, lock_hash: str) -> Path:
    """The final folder of env ``name`` built from a lockfile with ``lock_hash``."""
    return envs_dir(home) / env_key(name, lock_hash)


def lock_path(home: Path, key: str) -> Path:
    """The build lock file of env folder ``key``."""
    return envs_dir(home) / ".locks" / f"{key}.lock"


def venv_python(path: Path) -> Path:
    """The interpreter inside a venv folder."""
    return path / "bin" / "python"


@dataclass(frozen=True)
class Stamp:
    """What a finished build records about itself (the last file it writes)."""

    name: str
    lock_hash: str
    python_version: str
    base_python: str
    uv_version: str
    created: float
    build_s: float
    builder: str = "uv"
    version: int = STAMP_VERSION


def write_stamp(path: Path, stamp: Stamp) -> None:
    """Write the stamp durably (temp file, fsync, rename) into env folder ``path``."""
    target = path / STAMP_NAME
    tmp = path / (STAMP_NAME + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(asdict(stamp), fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def read_stamp(path: Path) -> Stamp | None:
    """The stamp of env folder ``path``, or None when absent or unreadable (not finished)."""
    try:
        data = json.loads((path / STAMP_NAME).read_text(encoding="utf-8"))
        return Stamp(**data)
    except (OSError, ValueError, TypeError):
        return None


def is_complete(path: Path, lock_hash: str) -> Stamp | None:
    """The stamp if ``path`` is a finished env of ``lock_hash`` with its python present."""
    stamp = read_stamp(path)
    if stamp is None or stamp.lock_hash != lock_hash:
        return None
    return stamp if venv_python(path).exists() else None


def remove_tree(path: Path) -> None:
    """Delete an env folder so that it never looks complete midway: stamp first, then files."""
    (path / STAMP_NAME).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class EnvInfo:
    """One folder under ``<home>/envs`` as ``vlmhb env list`` shows it."""

    key: str
    path: Path
    name: str
    lock_hash: str
    python_version: str
    created: float
    size_bytes: int
    complete: bool

    @property
    def age_s(self) -> float:
        """Seconds since the env was built (or the folder was last changed)."""
        return max(0.0, time.time() - self.created)


def folder_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (each hard-linked inode counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for fname in files:
            try:
                st = os.lstat(os.path.join(dirpath, fname))
            except OSError:
                continue
            ident = (st.st_dev, st.st_ino)
            if ident not in seen:
                seen.add(ident)
                total += st.st_size
    return total


def parse_key(folder: str) -> tuple[str, str, bool]:
    """``(name, lockhash12, is_temp)`` from an env folder name (temp: ``.tmp-<key>-<pid>``)."""
    temp = folder.startswith(TMP_PREFIX)
    key = folder.removeprefix(TMP_PREFIX).rsplit("-", 1)[0] if temp else folder
    name, _, short = key.rpartition("-")
    return name, short, temp


def _info(path: Path, sizes: bool) -> EnvInfo:
    name, short, temp = parse_key(path.name)
    stamp = read_stamp(path)
    complete = (
        not temp
        and stamp is not None
        and stamp.lock_hash[:HASH_CHARS] == short
        and venv_python(path).exists()
    )
    return EnvInfo(
        key=path.name,
        path=path,
        name=stamp.name if stamp else name,
        lock_hash=stamp.lock_hash if stamp else short,
        python_version=stamp.python_version if stamp else "",
        created=stamp.created if stamp else path.stat().st_mtime,
        size_bytes=folder_size(path) if sizes else 0,
        complete=complete,
    )


def list_env_folders(home: Path, *, sizes: bool = True) -> list[EnvInfo]:
    """Every env folder under ``home`` (finished, or left by a killed build), sorted."""
    base = envs_dir(home)
    if not base.is_dir():
        return []
    folders = sorted(p for p in base.iterdir() if p.is_dir() and p.name != ".locks")
    return [_info(path, sizes) for path in folders]


def site_packages(path: Path) -> Path | None:
    """The venv's ``lib/pythonX.Y/site-packages`` folder, if there is one."""
    found = sorted(path.glob("lib/python3*/site-packages"))
    return found[0] if found else None


def installed_in(path: Path) -> dict[str, str]:
    """``{distribution name: version}`` read from the venv's dist-info folders (no subprocess)."""
    sp = site_packages(path)
    if sp is None:
        return {}
    versions: dict[str, str] = {}
    for info in sp.glob("*.dist-info"):
        stem = info.name[: -len(".dist-info")]
        name, sep, version = stem.partition("-")
        if not sep:
            continue
        versions[name.lower().replace("_", "-").replace(".", "-")] = version
    return dict(sorted(versions.items()))
