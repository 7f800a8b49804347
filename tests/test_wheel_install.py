"""A plain ``pip install vlmhb`` (the wheel, no extras) runs a plan end to end.

The wheel is built from this checkout with ``uv build``, installed with uv into a fresh venv
outside the repository (offline from the home's uv cache when it holds every package, else
from the index), and its ``vlmhb`` runs an echo plan through infer, eval (the metrics stage in
that venv's own interpreter: the default ``local`` isolation) and the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_dataset

from vlmhb.envs.store import uv_cache_dir
from vlmhb.envs.uvtool import find_uv, uv_environ
from vlmhb.home import vlmhb_home

pytestmark = pytest.mark.timeout(900)


def _uv(args: list[str], cwd: Path, offline_first: bool = True) -> None:
    """Run uv against the home's cache: offline first, then (if that fails) online."""
    env = uv_environ(uv_cache_dir(vlmhb_home()))
    attempts = [["--offline"], []] if offline_first else [[]]
    for extra in attempts:
        done = subprocess.run(
            [str(find_uv()), *args, *extra], cwd=cwd, env=env, capture_output=True, text=True
        )
        if done.returncode == 0:
            return
    raise AssertionError(f"uv {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def _vlmhb(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / "vlmhb"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_wheel_without_extras_runs_an_echo_plan(tmp_path: Path) -> None:
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    _uv(["build", "--wheel", "--out-dir", str(dist), str(REPO)], cwd=tmp_path)
    (wheel,) = dist.glob("vlmhb-*.whl")
    _uv(["venv", "--quiet", "--python", sys.executable, str(venv)], tmp_path, offline_first=False)
    python = venv / "bin" / "python"
    _uv(["pip", "install", "--quiet", "--python", str(python), str(wheel)], tmp_path)
    make_dataset(work / "ds", n_docs=3)
    (work / "plan.csv").write_text(
        "name,dataset,backend,model\nEcho from the wheel,ds,echo,echo-m\n", encoding="utf-8"
    )
    ran = _vlmhb(venv, ["run", "plan.csv", "--report", "out/report.html"], cwd=work)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    (run_dir,) = (work / "runs").iterdir()
    assert (run_dir / "metrics" / "overall.csv").is_file()
    assert (work / "out" / "report.html").is_file() and (work / "out" / "summary.md").is_file()
    # The installed package, not this checkout, did the work.
    where = subprocess.run(
        [str(python), "-c", "import vlmhb; print(vlmhb.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)
    again = _vlmhb(venv, ["report", str(run_dir), "-o", "again/report.html"], cwd=work)
    assert again.returncode == 0, again.stderr
    assert (work / "again" / "summary.md").is_file()
