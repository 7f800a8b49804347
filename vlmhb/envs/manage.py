"""Look after built envs: drift check, list, remove, prune (plan first, then apply)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vlmhb.envs import store
from vlmhb.envs.recipe import default_root, load_recipe, lock_hash, lockfile_path, read_lockfile
from vlmhb.envs.uvtool import run_uv
from vlmhb.envs.verify import verify_env
from vlmhb.errors import EnvError


@dataclass(frozen=True)
class DriftReport:
    """What ``uv pip sync --check --offline`` said about one built env."""

    name: str
    path: Path
    ok: bool
    details: str


def check_env(name: str, *, root: Path | None = None, home: Path | None = None) -> DriftReport:
    """Compare the built env of ``name``'s current lockfile with the lockfile (no network),
    and every installed file with the sha256 its ``RECORD`` holds."""
    recipe = load_recipe(name, root)
    lockfile, digest = read_lockfile(recipe)
    home = store.resolve_home(home)
    path = store.env_path(home, name, digest)
    if store.is_complete(path, digest) is None:
        raise EnvError(name, f"not built for the current lockfile; run `vlmhb env build {name}`")
    result = run_uv(
        ["pip", "sync", "--check", "--offline", "--require-hashes",
         "--python", store.venv_python(path), lockfile],
        cache_dir=store.uv_cache_dir(home),
        env_name=name,
    )  # fmt: skip
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("Using Python")]
    changed = verify_env(path, full=True)  # every installed file against its RECORD hash
    lines += [f"changed since the build: {mismatch}" for mismatch in changed]
    ok = result.returncode == 0 and not changed
    return DriftReport(name=name, path=path, ok=ok, details="\n".join(lines))


def list_envs(home: Path | None = None, *, sizes: bool = True) -> list[store.EnvInfo]:
    """Every env folder under the home (finished, and leftovers of killed builds)."""
    return store.list_env_folders(store.resolve_home(home), sizes=sizes)


def remove_env(target: str, *, home: Path | None = None) -> list[Path]:
    """Remove every built env named ``target`` (or the one folder ``<name>-<hash12>``)."""
    from filelock import FileLock

    home = store.resolve_home(home)
    doomed = [
        info for info in store.list_env_folders(home, sizes=False)
        if info.key == target or (info.name == target and not info.key.startswith(store.TMP_PREFIX))
    ]  # fmt: skip
    if not doomed:
        raise EnvError(target, f"no built env of that name under {store.envs_dir(home)}")
    for info in doomed:
        with FileLock(str(store.lock_path(home, info.key)), timeout=60):
            store.remove_tree(info.path)
    return [info.path for info in doomed]


def plan_prune(*, root: Path | None = None, home: Path | None = None) -> list[store.EnvInfo]:
    """Env folders that prune would remove: lock hash not matching any current lockfile,
    and leftovers of killed builds whose lock nobody holds."""
    from filelock import FileLock, Timeout

    root = Path(root) if root else default_root()
    home = store.resolve_home(home)
    current: dict[str, str] = {}
    doomed = []
    for info in store.list_env_folders(home, sizes=False):
        if info.key.startswith(store.TMP_PREFIX):
            key = store.env_key(info.name, info.lock_hash)
            try:
                with FileLock(str(store.lock_path(home, key)), timeout=0):
                    doomed.append(info)
            except Timeout:
                pass  # a build is running right now
            continue
        if info.name not in current:
            lf = lockfile_path(root, info.name)
            current[info.name] = lock_hash(lf) if lf.is_file() else ""
        if not info.complete or info.lock_hash != current[info.name]:
            doomed.append(info)
    return doomed


def prune_envs(
    *, root: Path | None = None, home: Path | None = None, dry_run: bool = False
) -> list[store.EnvInfo]:
    """Remove what ``plan_prune`` lists (nothing when ``dry_run``); return the list."""
    home = store.resolve_home(home)
    doomed = plan_prune(root=root, home=home)
    if not dry_run:
        for info in doomed:
            store.remove_tree(info.path)
    return doomed


def describe_recipe(name: str, root: Path | None = None) -> str:
    """One line about a recipe: python, platform, lockfile state."""
    recipe = load_recipe(name, root)
    lf = recipe.lockfile
    state = f"lock {lock_hash(lf)[: store.HASH_CHARS]}" if lf.is_file() else "not locked"
    return f"{name}: python {recipe.python}, {recipe.platform}, {state}. {recipe.description}"


def human_size(size: int) -> str:
    """``1.2 GB`` style sizes for listings."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_age(seconds: float) -> str:
    """``5m``, ``3h``, ``2d`` style ages for listings."""
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{int(seconds // span)}{unit}"
    return f"{int(seconds)}s"
