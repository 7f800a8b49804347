"""The repository is self-contained: a fresh clone passes its tests, the suite stays in temp.

The clone test copies the committed ``HEAD`` with ``git clone`` into an empty folder (nothing
of ``../shared`` beside it) and runs the v0.1-format tests there with the clone's own code:
they pass on the project's fixtures, and the checks of the real v0.1 files skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

CLONE_TESTS = (
    "tests/test_data_v01.py",
    "tests/test_data_v01_compat.py",
    "tests/test_plan.py",
    "tests/test_prompts.py",
    "tests/test_models.py",
)


def test_the_suite_home_is_a_temp_folder_unless_told() -> None:
    home = Path(os.environ["VLMHB_HOME"])
    if os.environ.get("VLMHB_TEST_HOME"):
        assert home == Path(os.environ["VLMHB_TEST_HOME"])
    else:
        assert home != Path.home() / ".cache" / "vlmhb"
        assert home.parent.name.startswith("pytest-")  # the session's base temp folder


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_fresh_clone_passes_its_v01_tests_without_shared(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    head = _git("rev-parse", "HEAD", cwd=REPO)
    clone = tmp_path / "empty" / "vlmhb"
    clone.parent.mkdir()
    _git("clone", "--quiet", "--no-checkout", str(REPO), str(clone), cwd=tmp_path)
    _git("checkout", "--quiet", "--detach", head, cwd=clone)
    assert not (clone.parent / "shared").exists()
    present = [name for name in CLONE_TESTS if (clone / name).is_file()]
    env = {**os.environ, "PYTHONPATH": str(clone)}  # the clone's code, not this checkout's
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *present],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
    if "tests/test_data_v01_compat.py" in present:
        assert "SKIPPED" in done.stdout and "are not beside this checkout" in done.stdout
