"""``vlmhb env lock NAME``: compile a recipe into ``lockfiles/<name>.txt`` with uv.

``uv pip compile envs/NAME/requirements.in --generate-hashes --python-version X
--python-platform P [--excludes ...] -o lockfiles/NAME.txt``, run from the repository root so
the ``# via`` comments carry relative paths. Where packages come from beyond PyPI (e.g. the
local CPU torch wheel) is told by the caller's environment (``UV_FIND_LINKS``), never written
into the lockfile: a lockfile with an index or find-links line is refused.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vlmhb.envs import store
from vlmhb.envs.recipe import Recipe, load_recipe, lock_hash
from vlmhb.envs.uvtool import run_uv
from vlmhb.errors import EnvError

# Lines that would tie a committed lockfile to one machine or index.
_FORBIDDEN = ("--find-links", "-f ", "--index-url", "-i ", "--extra-index-url", "--trusted-host")


@dataclass(frozen=True)
class LockResult:
    """A lockfile written by ``lock_env``."""

    name: str
    lockfile: Path
    lock_hash: str
    packages: int
    changed: bool


def compile_command(recipe: Recipe) -> str:
    """The command shown in the lockfile header (stable, machine-independent)."""
    return f"vlmhb env lock {recipe.name}  # python {recipe.python}, {recipe.platform}"


def lock_env(
    name: str,
    *,
    root: Path | None = None,
    home: Path | None = None,
    upgrade: bool = False,
) -> LockResult:
    """Resolve env ``name``'s recipe into its hashed lockfile; return what was written."""
    recipe = load_recipe(name, root)
    lockfile = recipe.lockfile
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    before = lockfile.read_bytes() if lockfile.is_file() else None
    home = store.resolve_home(home)
    with tempfile.TemporaryDirectory(prefix="vlmhb-lock-") as scratch:
        out = Path(scratch) / "lock.txt"
        if before is not None and not upgrade:
            out.write_bytes(before)  # uv keeps pins from the existing output file
        args: list[str | os.PathLike[str]] = [
            "pip", "compile", os.path.relpath(recipe.requirements, recipe.root),
            "--generate-hashes", "--quiet", "--no-config",
            "--python-version", recipe.python, "--python-platform", recipe.platform,
            "--custom-compile-command", compile_command(recipe),
            "--output-file", out,
        ]  # fmt: skip
        if upgrade:
            args.append("--upgrade")
        if recipe.exclude:
            excludes = Path(scratch) / "excludes.txt"
            excludes.write_text("\n".join(recipe.exclude) + "\n", encoding="utf-8")
            args += ["--excludes", excludes]
        result = run_uv(args, cache_dir=store.uv_cache_dir(home), cwd=recipe.root, env_name=name)
        if result.returncode != 0:
            raise EnvError(name, f"locking {recipe.requirements} failed", result.tail())
        text = out.read_text(encoding="utf-8")
    check_portable(name, text)
    if before != text.encode("utf-8"):
        lockfile.write_text(text, encoding="utf-8")
    return LockResult(
        name=name,
        lockfile=lockfile,
        lock_hash=lock_hash(lockfile),
        packages=sum(1 for line in text.splitlines() if "==" in line and not line.startswith(" ")),
        changed=before != text.encode("utf-8"),
    )


def check_portable(name: str, text: str) -> None:
    """Refuse a lockfile that names an index or a find-links folder."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(_FORBIDDEN):
            raise EnvError(
                name,
                f"lockfile line {number} ties it to one machine ({stripped.split()[0]}); "
                "give indexes and wheel folders through UV_FIND_LINKS / UV_INDEX instead",
            )
