"""Env recipes: ``envs/<name>/requirements.in`` plus ``envs/<name>/env.toml``.

A recipe is what a human edits; ``lockfiles/<name>.txt`` is what ``vlmhb env lock`` makes of
it and what a build installs. ``env.toml`` holds the metadata (all keys optional)::

    description = "CPU transformers for the tiny test model"
    python = "3.11"                        # the interpreter version the env is built with
    platform = "x86_64-manylinux_2_28"     # uv --python-platform used when locking
    exclude = ["triton"]                   # packages removed from the resolution
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from vlmhb.errors import EnvError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_PYTHON = "3.11"
DEFAULT_PLATFORM = "x86_64-manylinux_2_28"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KEYS = {"description", "python", "platform", "exclude"}


@dataclass(frozen=True)
class Recipe:
    """One environment's recipe, read from ``envs/<name>/``."""

    name: str
    root: Path
    description: str = ""
    python: str = DEFAULT_PYTHON
    platform: str = DEFAULT_PLATFORM
    exclude: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        """``envs/<name>/``."""
        return self.root / "envs" / self.name

    @property
    def requirements(self) -> Path:
        """``envs/<name>/requirements.in``."""
        return self.folder / "requirements.in"

    @property
    def lockfile(self) -> Path:
        """``lockfiles/<name>.txt``."""
        return lockfile_path(self.root, self.name)


def default_root() -> Path:
    """The checkout holding ``envs/`` and ``lockfiles/``: the folder above the package."""
    return Path(__file__).resolve().parents[2]


def lockfile_path(root: Path, name: str) -> Path:
    """Where the lockfile of env ``name`` lives."""
    return root / "lockfiles" / f"{name}.txt"


def known_envs(root: Path | None = None) -> list[str]:
    """Names of the envs that have a recipe (``envs/<name>/requirements.in``), sorted."""
    base = (Path(root) if root else default_root()) / "envs"
    if not base.is_dir():
        return []
    return sorted(p.parent.name for p in base.glob("*/requirements.in"))


def load_recipe(name: str, root: Path | None = None) -> Recipe:
    """Read the recipe of ``name``; an unknown name raises an ``EnvError`` listing the known."""
    root = Path(root) if root else default_root()
    if not _NAME.match(name):
        raise EnvError(name, "invalid env name (use lower-case letters, digits, '.', '_', '-')")
    folder = root / "envs" / name
    if not (folder / "requirements.in").is_file():
        known = ", ".join(known_envs(root)) or "none"
        raise EnvError(name, f"unknown env: no {folder}/requirements.in (known: {known})")
    meta: dict[str, object] = {}
    toml_path = folder / "env.toml"
    if toml_path.is_file():
        try:
            meta = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise EnvError(name, f"{toml_path}: {exc}") from exc
    unknown = sorted(set(meta) - _KEYS)
    if unknown:
        raise EnvError(name, f"{toml_path}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    python = str(meta.get("python", DEFAULT_PYTHON))
    if not re.fullmatch(r"3\.\d+", python):
        raise EnvError(name, f"{toml_path}: python must look like '3.11', got {python!r}")
    exclude = meta.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise EnvError(name, f"{toml_path}: exclude must be a list of package names")
    return Recipe(
        name=name,
        root=root,
        description=str(meta.get("description", "")),
        python=python,
        platform=str(meta.get("platform", DEFAULT_PLATFORM)),
        exclude=tuple(exclude),
    )


def lock_hash(lockfile: Path) -> str:
    """The sha256 of a lockfile's bytes: the identity of the env built from it."""
    return hashlib.sha256(lockfile.read_bytes()).hexdigest()


def read_lockfile(recipe: Recipe) -> tuple[Path, str]:
    """Return the recipe's lockfile and its hash, or raise a one-line ``EnvError``."""
    path = recipe.lockfile
    if not path.is_file():
        raise EnvError(recipe.name, f"no lockfile {path}; run `vlmhb env lock {recipe.name}`")
    return path, lock_hash(path)
