"""Faults of env builds, for real: tampered hashes, killed and concurrent builds, bad names.

The killed build is made to hang on purpose: its uv is pointed (``UV_DEFAULT_INDEX``) at a
local socket that accepts connections and never answers, so the kill lands mid-install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_envs import REPO, copy_recipes, home, root, run_in, shared_uv_cache

from vlmhb.envs import ensure_env, installed_versions, list_envs, prune_envs, store
from vlmhb.envs.lock import check_portable
from vlmhb.envs.recipe import lock_hash
from vlmhb.errors import EnvError

__all__ = ["home", "root", "shared_uv_cache"]  # fixtures used here

SIX = """six==1.17.0 \\
    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274 \\
    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81
"""

BUILD_SCRIPT = """
import json, sys
from pathlib import Path
from vlmhb.envs import ensure_env
env = ensure_env(sys.argv[1], root=Path(sys.argv[2]), home=Path(sys.argv[3]))
print(json.dumps({"path": str(env.path), "reused": env.reused}))
"""


def start_build(name: str, root: Path, home: Path, **env: str) -> subprocess.Popen[str]:
    """``ensure_env`` in a separate process (its own session, so the group can be killed)."""
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, name, str(root), str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )


def tamper(lockfile: Path, package: str) -> None:
    """Flip the last hex digit of every hash of ``package`` in ``lockfile``."""
    lines, inside = [], False
    for line in lockfile.read_text().splitlines(keepends=True):
        if not line.startswith(" "):
            inside = line.startswith(f"{package}==")
        if inside and "--hash=sha256:" in line:
            head, _, tail = line.partition("--hash=sha256:")
            digest = tail[:64]
            flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
            line = head + "--hash=sha256:" + flipped + tail[64:]
        lines.append(line)
    lockfile.write_text("".join(lines))


def test_tampered_hash_fails_naming_the_package_and_keeps_the_good_env(
    root: Path, home: Path
) -> None:
    good = ensure_env("tesseract", root=root, home=home)
    tamper(root / "lockfiles" / "tesseract.txt", "packaging")
    bad_key = store.env_key("tesseract", lock_hash(root / "lockfiles" / "tesseract.txt"))
    with pytest.raises(EnvError) as info:
        ensure_env("tesseract", root=root, home=home)
    message = str(info.value)
    assert "Hash mismatch" in message and "packaging" in message
    assert "tesseract" in message
    leftovers = sorted(p.name for p in (home / "envs").iterdir() if p.name != ".locks")
    assert leftovers == [good.path.name], f"half-built env left: {leftovers} ({bad_key})"
    res = run_in(good.python, "import pytesseract, PIL")
    assert res.returncode == 0, res.stderr


@pytest.fixture
def silent_index() -> Iterator[str]:
    """An index URL whose server accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/simple"
    finally:
        server.close()


def test_killed_build_leaves_nothing_that_looks_complete(tmp_path: Path, silent_index: str) -> None:
    root = copy_recipes(tmp_path / "repo", ("echo",))
    (root / "envs" / "echo").rename(root / "envs" / "six")
    (root / "lockfiles" / "six.txt").write_text(SIX)
    home = tmp_path / "home"  # its own empty uv cache: six must be fetched, and hangs
    proc = start_build("six", root, home, UV_DEFAULT_INDEX=silent_index, UV_HTTP_TIMEOUT="60")
    deadline = time.monotonic() + 30
    tmp_dirs: list[Path] = []
    while time.monotonic() < deadline and not tmp_dirs:
        tmp_dirs = [p for p in (home / "envs").glob(".tmp-six-*") if (p / "pyvenv.cfg").exists()]
        time.sleep(0.05)
    assert tmp_dirs, "the build never started"
    time.sleep(0.5)  # uv is now waiting on the silent index
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    digest = lock_hash(root / "lockfiles" / "six.txt")
    final = store.env_path(home, "six", digest)
    assert not final.exists()
    assert store.is_complete(tmp_dirs[0], digest) is None
    assert [info.complete for info in list_envs(home)] == [False]
    # the next build (with a working index) clears the leftover and succeeds
    built = ensure_env("six", root=root, home=home)
    assert built.path == final and not built.reused
    assert [p.name for p in (home / "envs").iterdir() if p.name != ".locks"] == [final.name]
    assert run_in(built.python, "import six").returncode == 0


def test_prune_removes_leftovers_of_killed_builds(root: Path, home: Path) -> None:
    built = ensure_env("echo", root=root, home=home)
    leftover = home / "envs" / f".tmp-{built.path.name}-999999"
    leftover.mkdir()
    (leftover / "pyvenv.cfg").write_text("home = /nowhere\n")
    assert [i.path for i in prune_envs(root=root, home=home)] == [leftover]
    assert built.path.is_dir() and not leftover.exists()


def test_concurrent_builds_one_builds_the_other_waits_and_reuses(root: Path, home: Path) -> None:
    from filelock import FileLock

    key = store.env_key("tesseract", lock_hash(root / "lockfiles" / "tesseract.txt"))
    gate = FileLock(str(store.lock_path(home, key)))
    (home / "envs" / ".locks").mkdir(parents=True)
    with gate:  # hold the build lock so both processes are surely waiting at once
        procs = [start_build("tesseract", root, home) for _ in range(2)]
        time.sleep(1.5)
        assert all(p.poll() is None for p in procs), "a build did not wait for the lock"
        assert not (home / "envs" / key).exists()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(r["reused"] for r in results) == [False, True]
    assert results[0]["path"] == results[1]["path"] == str(home / "envs" / key)


def test_unknown_env_names_the_known_ones(root: Path, home: Path) -> None:
    with pytest.raises(EnvError, match=r"unknown env.*known: echo, tesseract"):
        ensure_env("nope", root=root, home=home)


def test_missing_lockfile_says_to_lock(root: Path, home: Path) -> None:
    (root / "lockfiles" / "echo.txt").unlink()
    with pytest.raises(EnvError, match=r"no lockfile .*echo.txt; run `vlmhb env lock echo`"):
        ensure_env("echo", root=root, home=home)


def test_missing_interpreter_says_what_to_do(root: Path, home: Path) -> None:
    toml = root / "envs" / "echo" / "env.toml"
    toml.write_text('python = "3.4"\n')
    with pytest.raises(EnvError, match=r"no Python 3.4 interpreter found.*VLMHB_PYTHON34"):
        ensure_env("echo", root=root, home=home)
    assert not any((home / "envs").glob("echo-*"))


def test_interpreter_override_must_exist(
    root: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLMHB_PYTHON311", str(root / "no-such-python"))
    with pytest.raises(EnvError, match=r"no Python 3\.11 interpreter"):
        ensure_env("echo", root=root, home=home)


def test_missing_uv_says_how_to_install(
    root: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uv is installed here; hiding it (no `uv` module, empty PATH) is the only way to test this.
    monkeypatch.setitem(sys.modules, "uv", None)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(EnvError, match=r"uv not found: install it with `pip install uv`"):
        ensure_env("echo", root=root, home=home)


def test_invalid_recipe_metadata_is_reported(root: Path, home: Path) -> None:
    (root / "envs" / "echo" / "env.toml").write_text('pyhton = "3.11"\n')
    with pytest.raises(EnvError, match=r"unknown key\(s\) \['pyhton'\]"):
        ensure_env("echo", root=root, home=home)


def test_a_lockfile_naming_a_wheel_folder_is_refused() -> None:
    check_portable("x", "# header\nsix==1.17.0 \\\n    --hash=sha256:00\n")
    with pytest.raises(EnvError, match="find-links"):
        check_portable("x", "--find-links /opt/wheels\nsix==1.17.0\n")


def test_shipped_lockfiles_are_portable_and_hashed() -> None:
    for lockfile in sorted((REPO / "lockfiles").glob("*.txt")):
        text = lockfile.read_text()
        check_portable(lockfile.stem, text)
        pins = [ln for ln in text.splitlines() if ln and not ln.startswith((" ", "#"))]
        assert all("==" in pin and pin.endswith("\\") for pin in pins), lockfile
        assert "/opt/" not in text and "/root/" not in text, lockfile


def test_virtualenv_fallback_builds_the_same_lockfile_and_refuses_bad_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLMHB_ENV_BUILDER", "virtualenv")
    root = copy_recipes(tmp_path / "repo", ("echo",))
    shutil.copytree(root / "envs" / "echo", root / "envs" / "six")
    (root / "lockfiles" / "six.txt").write_text(SIX)
    home = tmp_path / "home"
    built = ensure_env("six", root=root, home=home)
    assert not built.reused and store.read_stamp(built.path).builder == "virtualenv"
    assert installed_versions(built)["six"] == "1.17.0"
    assert run_in(built.python, "import six").returncode == 0
    pip = subprocess.run([str(built.path / "bin" / "pip"), "--version"], capture_output=True)
    assert pip.returncode == 0 and str(built.path).encode() in pip.stdout  # scripts retargeted
    assert ensure_env("six", root=root, home=home).reused

    tamper(root / "lockfiles" / "six.txt", "six")
    with pytest.raises(EnvError, match=r"(?s)failed \(pip\).*six==1\.17\.0"):
        ensure_env("six", root=root, home=home)
    assert [p.name for p in (home / "envs").iterdir() if p.name != ".locks"] == [built.path.name]


def test_unknown_builder_is_one_line(
    root: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLMHB_ENV_BUILDER", "conda")
    with pytest.raises(EnvError, match=r"VLMHB_ENV_BUILDER must be one of uv, virtualenv"):
        ensure_env("echo", root=root, home=home)


def test_cpu_torch_without_find_links_says_where_to_point(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    root = copy_recipes(tmp_path / "repo", ("hf-cpu",))
    with pytest.raises(EnvError) as info:
        ensure_env("hf-cpu", root=root, home=home)
    message = str(info.value)
    assert "torch==2.13.0+cpu" in message and "point UV_FIND_LINKS at" in message
    assert "Using Python" not in message
    assert [p.name for p in (home / "envs").iterdir() if p.name != ".locks"] == []
