"""Real uv builds of the shipped ``echo`` and ``tesseract`` envs: build, reuse, rebuild, drift.

Every test builds into its own temporary ``VLMHB_HOME`` from a temporary copy of ``envs/`` and
``lockfiles/``; the uv cache is shared by the session (a symlink into each home) so PyPI is
asked once. Fixtures here are imported by the other ``test_envs_*`` files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from vlmhb.envs import (
    check_env,
    ensure_env,
    installed_versions,
    known_envs,
    list_envs,
    prune_envs,
    remove_env,
    store,
    vlmhb_home,
)
from vlmhb.envs.recipe import default_root, lock_hash
from vlmhb.run.code_shim import code_shim

REPO = default_root()
SMALL_ENVS = ("echo", "tesseract")


def copy_recipes(dest: Path, names: tuple[str, ...] = SMALL_ENVS) -> Path:
    """Copy the named recipes and their committed lockfiles into ``dest``; return it."""
    (dest / "lockfiles").mkdir(parents=True)
    for name in names:
        shutil.copytree(REPO / "envs" / name, dest / "envs" / name)
        shutil.copy2(REPO / "lockfiles" / f"{name}.txt", dest / "lockfiles" / f"{name}.txt")
    return dest


@pytest.fixture(scope="session")
def shared_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the session (same filesystem as the homes, so hard links work)."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A private copy of the echo and tesseract recipes and lockfiles."""
    return copy_recipes(tmp_path / "repo")


@pytest.fixture
def home(tmp_path: Path, shared_uv_cache: Path) -> Path:
    """An empty ``VLMHB_HOME`` whose uv cache is the session's."""
    path = tmp_path / "home"
    path.mkdir()
    (path / "uv-cache").symlink_to(shared_uv_cache, target_is_directory=True)
    return path


def run_in(python: Path, code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` with a clean environment (no PYTHONPATH of ours)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(kwargs.pop("extra_env", {}) or {})  # type: ignore[arg-type]
    return subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_home_defaults_and_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VLMHB_HOME", raising=False)
    assert vlmhb_home() == Path.home() / ".cache" / "vlmhb"
    monkeypatch.setenv("VLMHB_HOME", str(tmp_path))
    assert vlmhb_home() == tmp_path


def test_known_envs_lists_shipped_recipes() -> None:
    names = known_envs(REPO)
    for name in ("echo", "metrics", "tesseract", "hf-cpu", "vllm-cpu", "hf-qwen", "vllm", "sglang"):
        assert name in names
        assert (REPO / "lockfiles" / f"{name}.txt").is_file()


def test_echo_builds_from_an_empty_lockfile_then_is_reused(root: Path, home: Path) -> None:
    built = ensure_env("echo", root=root, home=home)
    digest = lock_hash(root / "lockfiles" / "echo.txt")
    assert not built.reused and built.build_s > 0
    assert built.path == home / "envs" / f"echo-{digest[:12]}"
    assert built.lock_hash == digest
    assert built.python == built.path / "bin" / "python"
    assert built.python_version.startswith("3.11.")
    assert (built.path / store.STAMP_NAME).is_file()
    assert installed_versions(built) == {}
    assert run_in(built.python, "import sys; print(sys.prefix)").stdout.strip() == str(built.path)

    started = time.perf_counter()
    again = ensure_env("echo", root=root, home=home)
    reuse_s = time.perf_counter() - started
    assert again.reused and again.build_s == 0
    assert again.path == built.path and again.lock_hash == digest
    assert reuse_s < 0.05, f"reuse check took {reuse_s * 1000:.1f} ms"


def test_echo_env_runs_the_worker_code_without_orchestrator_packages(
    root: Path, home: Path
) -> None:
    built = ensure_env("echo", root=root, home=home)
    shim = code_shim()
    ok = run_in(built.python, "import vlmhb.worker.loop, vlmhb.worker.protocol; print('ok')",
                extra_env={"PYTHONPATH": str(shim)})  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    for module in ("pandas", "click", "pydantic", "pyarrow", "filelock"):
        res = run_in(built.python, f"import {module}", extra_env={"PYTHONPATH": str(shim)})
        assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr, module


def test_tesseract_env_has_its_packages_hard_linked_from_the_cache(root: Path, home: Path) -> None:
    built = ensure_env("tesseract", root=root, home=home)
    # compiled at build time (before anything imported it): a fresh env's imports read .pyc
    site = next(built.path.glob("lib/python3*/site-packages"))
    assert list(site.glob("pytesseract/__pycache__/pytesseract.*.pyc"))
    versions = installed_versions(built)
    assert versions["pytesseract"] == "0.3.13"
    assert {"pillow", "packaging"} <= set(versions)
    res = run_in(built.python, "import PIL, pytesseract; print(PIL.__version__)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == versions["pillow"]
    init = next(built.path.glob("lib/python3*/site-packages/pytesseract/pytesseract.py"))
    assert init.stat().st_nlink >= 2, "installed file is a copy, not a hard link into the cache"


def test_changed_lockfile_builds_a_new_env_and_prune_removes_the_old(
    root: Path, home: Path
) -> None:
    first = ensure_env("echo", root=root, home=home)
    lockfile = root / "lockfiles" / "echo.txt"
    lockfile.write_text(lockfile.read_text() + "# changed\n")
    second = ensure_env("echo", root=root, home=home)
    assert not second.reused and second.path != first.path
    assert second.lock_hash == lock_hash(lockfile)
    assert first.path.is_dir()  # the old env stays until pruned

    assert [i.path for i in prune_envs(root=root, home=home, dry_run=True)] == [first.path]
    assert first.path.is_dir()
    assert [i.path for i in prune_envs(root=root, home=home)] == [first.path]
    assert not first.path.exists() and second.path.is_dir()
    assert prune_envs(root=root, home=home) == []


def test_check_reports_drift(root: Path, home: Path) -> None:
    built = ensure_env("tesseract", root=root, home=home)
    assert check_env("tesseract", root=root, home=home).ok
    dist_info = next(built.path.glob("lib/python3*/site-packages/pytesseract-*.dist-info"))
    shutil.rmtree(dist_info)
    report = check_env("tesseract", root=root, home=home)
    assert not report.ok
    assert "pytesseract" in report.details


def test_list_and_remove(root: Path, home: Path) -> None:
    echo = ensure_env("echo", root=root, home=home)
    tess = ensure_env("tesseract", root=root, home=home)
    rows = {info.name: info for info in list_envs(home)}
    assert set(rows) == {"echo", "tesseract"}
    assert rows["tesseract"].complete and rows["tesseract"].lock_hash == tess.lock_hash
    assert rows["tesseract"].python_version == tess.python_version
    assert rows["tesseract"].size_bytes > rows["echo"].size_bytes > 0
    assert 0 <= rows["echo"].age_s < 600
    assert remove_env("echo", home=home) == [echo.path]
    assert not echo.path.exists()
    assert [info.name for info in list_envs(home)] == ["tesseract"]


def test_changing_the_recipe_python_rebuilds_on_that_python(root: Path, home: Path) -> None:
    first = ensure_env("echo", root=root, home=home)
    (root / "envs" / "echo" / "env.toml").write_text('python = "3.12"\n')
    second = ensure_env("echo", root=root, home=home)
    assert not second.reused and second.path == first.path
    assert second.python_version.startswith("3.12.")
    res = run_in(second.python, "import sys; print(sys.version_info[:2])")
    assert res.stdout.strip() == "(3, 12)"
