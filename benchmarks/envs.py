"""Benchmark env builds: uv (vlmhb.envs) against ``python -m venv`` + ``pip --require-hashes``.

Run from the checkout: ``.venv/bin/python benchmarks/envs.py [--env tesseract] [--repeat 20]``.
Everything happens in a temporary home (uv and pip caches included, same filesystem), so the
cold figures include downloads from PyPI. Measured, for one env's committed lockfile:

* cold build: empty uv cache, new venv (``ensure_env``);
* warm build: cache full, new venv (the env removed first);
* reuse: ``ensure_env`` when the env is already built (a stamp check), median of ``--repeat``;
* reuse, new process: the same from a fresh interpreter (start-up and imports included);
* drift check: ``check_env`` (``uv pip sync --check --offline``);
* pip cold / warm: ``python -m venv`` then ``pip install --require-hashes -r LOCKFILE``.

Targets (issue #3): reuse <= 50 ms, warm <= 1 s for a pure-Python env, >= 5x faster than pip warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vlmhb.envs import check_env, ensure_env, load_recipe, remove_env
from vlmhb.envs.interpreter import find_interpreter


def timed(func: Callable[[], object]) -> float:
    """Seconds one call of ``func`` takes."""
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def pip_build(python: Path, lockfile: Path, venv: Path, cache: Path) -> tuple[float, float]:
    """``python -m venv`` then ``pip install --require-hashes``: seconds for each step.

    pip runs with no config file and no find-links (like uv here: PyPI only).
    """
    environ = {**os.environ, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    environ["PIP_CONFIG_FILE"] = os.devnull
    for var in ("VIRTUAL_ENV", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        environ.pop(var, None)
    started = time.perf_counter()
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, env=environ)
    made = time.perf_counter()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--require-hashes", "-r", str(lockfile)],
        check=True,
        env=environ,
    )  # fmt: skip
    return made - started, time.perf_counter() - made


def run(name: str, repeat: int) -> dict[str, float]:
    """Measure every figure for env ``name``; return them in seconds."""
    recipe = load_recipe(name)
    interpreter = find_interpreter(recipe.python, name)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vlmhb-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        home = Path(tmp) / "home"
        figures["uv cold build"] = timed(lambda: ensure_env(name, home=home))
        remove_env(name, home=home)
        figures["uv warm build"] = timed(lambda: ensure_env(name, home=home))
        reuse = [timed(lambda: ensure_env(name, home=home)) for _ in range(repeat)]
        figures["reuse check (median)"] = statistics.median(reuse)
        code = f"from vlmhb.envs import ensure_env; ensure_env({name!r}, home={str(home)!r})"
        figures["reuse, new process"] = timed(
            lambda: subprocess.run([sys.executable, "-c", code], check=True)
        )
        figures["drift check"] = timed(lambda: check_env(name, home=home))
        pip_cache = Path(tmp) / "pip-cache"
        for label, folder in (("cold", "p1"), ("warm", "p2")):
            venv = Path(tmp) / folder
            venv_s, install_s = pip_build(interpreter, recipe.lockfile, venv, pip_cache)
            figures[f"pip {label} build"] = venv_s + install_s
            figures[f"  pip {label}: install only"] = install_s
    return figures


def main() -> None:
    """Parse arguments, run, print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="tesseract", help="env whose lockfile is built")
    parser.add_argument("--repeat", type=int, default=20, help="reuse checks to take the median of")
    args = parser.parse_args()
    figures = run(args.env, args.repeat)
    print(f"env {args.env} (lockfile lockfiles/{args.env}.txt)")
    for label, seconds in figures.items():
        print(f"  {label:<22} {seconds * 1000:9.1f} ms")
    warm_ratio = figures["pip warm build"] / figures["uv warm build"]
    cold_ratio = figures["pip cold build"] / figures["uv cold build"]
    print(f"  pip/uv warm            {warm_ratio:9.1f}x   (target >= 5x)")
    print(f"  pip/uv cold            {cold_ratio:9.1f}x")
    ok_reuse = figures["reuse check (median)"] <= 0.05
    ok_warm = figures["uv warm build"] <= 1.0
    print(f"  targets: reuse <= 50 ms {'met' if ok_reuse else 'MISSED'}, "
          f"warm <= 1 s {'met' if ok_warm else 'MISSED'}, "
          f">= 5x pip warm {'met' if warm_ratio >= 5 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
