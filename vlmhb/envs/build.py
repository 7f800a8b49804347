"""Build or reuse an env from its lockfile: ``ensure_env``.

Reuse is a stamp check (read one small JSON file; milliseconds). A build runs under a file
lock: ``uv venv`` (absolute interpreter, relocatable, no downloads) into a ``.tmp-`` folder
next to the final one, ``uv pip sync --require-hashes --compile-bytecode`` of the lockfile
into it (compiled at build time, the first ``import vllm`` takes ~8 s instead of ~22 s), the stamp
written last, then one atomic rename into place. Whoever waited on the lock finds the stamp
and reuses the env. A failed build removes its temp folder and leaves earlier envs alone.
``VLMHB_ENV_BUILDER=virtualenv`` swaps the two uv steps for virtualenv + pip (``fallback.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from vlmhb.envs import store
from vlmhb.envs.build_progress import BuildProgress
from vlmhb.envs.fallback import build_with_virtualenv, chosen_builder
from vlmhb.envs.interpreter import find_interpreter
from vlmhb.envs.recipe import Recipe, load_recipe, read_lockfile
from vlmhb.envs.uvtool import run_uv
from vlmhb.errors import EnvError

LOCK_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class BuiltEnv:
    """A finished env, ready to start workers in."""

    name: str
    path: Path
    python: Path
    lock_hash: str
    python_version: str
    build_s: float
    reused: bool


def _reused(name: str, path: Path, stamp: store.Stamp) -> BuiltEnv:
    return BuiltEnv(
        name=name,
        path=path,
        python=store.venv_python(path),
        lock_hash=stamp.lock_hash,
        python_version=stamp.python_version,
        build_s=0.0,
        reused=True,
    )


def ensure_env(name: str, *, root: Path | None = None, home: Path | None = None) -> BuiltEnv:
    """Return env ``name`` built from ``lockfiles/<name>.txt``, building it if needed."""
    recipe = load_recipe(name, root)
    lockfile, digest = read_lockfile(recipe)
    home = store.resolve_home(home)
    final = store.env_path(home, name, digest)
    stamp = _usable(final, digest, recipe)
    if stamp is not None:
        refuse_if_changed(name, final)
        return _reused(name, final, stamp)
    return _build_locked(recipe, lockfile, digest, home, final)


def refuse_if_changed(name: str, path: Path) -> None:
    """Refuse a built env whose installed files no longer match their RECORD (sizes, presence)."""
    from vlmhb.envs.verify import verify_env

    changed = verify_env(path, full=False)
    if changed:
        shown = "; ".join(str(m) for m in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise EnvError(
            name,
            f"refused: {len(changed)} installed file(s) changed since the build: {shown}{more}. "
            f"Rebuild it: vlmhb env rm {path.name} && vlmhb env build {name} (envs hard-link "
            "uv's cache: after an edit in place, `uv cache clean <package>` as well)",
        )


def _usable(final: Path, digest: str, recipe: Recipe) -> store.Stamp | None:
    """The stamp of a finished env of this lockfile on the Python the recipe asks for."""
    stamp = store.is_complete(final, digest)
    if stamp is None or not (stamp.python_version + ".").startswith(recipe.python + "."):
        return None
    return stamp


def _build_locked(recipe: Recipe, lockfile: Path, digest: str, home: Path, final: Path) -> BuiltEnv:
    from filelock import FileLock, Timeout

    lock_file = store.lock_path(home, final.name)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock_file), timeout=LOCK_TIMEOUT_S):
            stamp = _usable(final, digest, recipe)
            if stamp is not None:  # someone else built it while we waited
                return _reused(recipe.name, final, stamp)
            return _build(recipe, lockfile, digest, home, final)
    except Timeout as exc:
        raise EnvError(recipe.name, f"timed out waiting for the build lock {lock_file}") from exc


def _clear_leftovers(final: Path) -> None:
    """Under the lock: remove earlier killed builds of this env and any unstamped final dir."""
    for stale in final.parent.glob(f"{store.TMP_PREFIX}{final.name}-*"):
        store.remove_tree(stale)
    if final.exists():
        store.remove_tree(final)


def _build(recipe: Recipe, lockfile: Path, digest: str, home: Path, final: Path) -> BuiltEnv:
    name = recipe.name
    builder = chosen_builder(name)
    interpreter = find_interpreter(recipe.python, name)
    _clear_leftovers(final)
    tmp = final.parent / f"{store.TMP_PREFIX}{final.name}-{os.getpid()}"
    started = time.perf_counter()
    try:
        if builder == "uv":
            _build_with_uv(name, interpreter, lockfile, tmp, store.uv_cache_dir(home))
        else:
            pip_cache = store.pip_cache_dir(home)
            build_with_virtualenv(name, interpreter, lockfile, tmp, final, pip_cache)
        cfg = _venv_cfg(tmp)
        python_version = cfg.get("version_info", cfg.get("version", ""))
        build_s = time.perf_counter() - started
        store.write_stamp(
            tmp,
            store.Stamp(
                name=name,
                lock_hash=digest,
                python_version=python_version,
                base_python=str(interpreter),
                uv_version=cfg.get("uv", ""),
                created=time.time(),
                build_s=round(build_s, 3),
                builder=builder,
            ),
        )
        os.rename(tmp, final)
    except BaseException:
        store.remove_tree(tmp)
        raise
    return BuiltEnv(
        name=name,
        path=final,
        python=store.venv_python(final),
        lock_hash=digest,
        python_version=python_version,
        build_s=time.perf_counter() - started,
        reused=False,
    )


def _build_with_uv(name: str, interpreter: Path, lockfile: Path, tmp: Path, cache: Path) -> None:
    """``uv venv`` (relocatable, absolute interpreter) then ``uv pip sync --require-hashes``."""
    cache.mkdir(parents=True, exist_ok=True)
    made = run_uv(
        ["venv", "--quiet", "--no-config", "--relocatable", "--python", interpreter, tmp],
        cache_dir=cache,
        env_name=name,
    )
    if made.returncode != 0:
        raise EnvError(name, f"`uv venv` failed with {interpreter}", made.tail())
    with BuildProgress(name, str(lockfile)) as progress:
        synced = run_uv(
            ["pip", "sync", "--require-hashes", "--link-mode", "hardlink", "--compile-bytecode",
             "--python", store.venv_python(tmp), lockfile],
            cache_dir=cache,
            env_name=name,
            on_line=progress.feed,
        )  # fmt: skip
        if synced.returncode != 0:
            raise EnvError(name, f"installing {lockfile} failed (uv pip sync)", synced.tail())


def _venv_cfg(path: Path) -> dict[str, str]:
    """The ``key = value`` lines of the venv's ``pyvenv.cfg`` (no subprocess)."""
    cfg = {}
    for line in (path / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip()] = value.strip()
    return cfg


def installed_versions(env: BuiltEnv) -> dict[str, str]:
    """``{package: version}`` installed in ``env`` (read from dist-info names, no subprocess)."""
    return store.installed_in(env.path)
