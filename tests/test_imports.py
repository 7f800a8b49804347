"""Every module of vlmhb imports on its own, first, in a fresh interpreter: no import cycles.

A cycle shows only when one of its modules is the first imported (``cannot import name ...
partially initialized module``), so each module is imported in a process of its own: a clean
interpreter that has imported no vlmhb module forks once per module (cheaper than a new
interpreter each, and the same starting point). Third-party libraries are preloaded in the
parent; only vlmhb's own import order matters here. Libraries that live only in model envs
(torch, vllm ...) are imported lazily, inside functions, so every module imports here too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import vlmhb

PACKAGE = Path(vlmhb.__file__).resolve().parent

PROBE = """
import json, os, sys, traceback
import click, numpy, pandas, pyarrow, pydantic, rich  # noqa: F401  (third party, preloaded)
assert not [m for m in sys.modules if m == "vlmhb" or m.startswith("vlmhb.")]
failed = {}
for module in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(module)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc()[-1500:].encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        error = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed[module] = error or f"exit status {status}"
print(json.dumps(failed))
"""


def all_modules() -> list[str]:
    """Every module and package of vlmhb (``__main__`` modules run programs, left out)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_walk_finds_every_room() -> None:
    modules = all_modules()
    assert {"vlmhb", "vlmhb.api", "vlmhb.run.dispatch", "vlmhb.worker.loop"} <= set(modules)
    assert {"vlmhb.metrics", "vlmhb.form_labels", "vlmhb.gate.compare"} <= set(modules)
    assert len(modules) == len(list(PACKAGE.rglob("*.py"))) - len(
        list(PACKAGE.rglob("__main__.py"))
    )


def test_every_module_imports_first_in_a_fresh_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(all_modules())],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads(done.stdout)
    assert not failed, failed


def test_a_cycle_would_be_caught(tmp_path: Path) -> None:
    """The probe itself fails on a real cycle (two modules importing a name from each other)."""
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclic.a import A\nB = 2\n")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(["cyclic.a"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads(done.stdout)
    assert list(failed) == ["cyclic.a"] and "partially initialized module" in failed["cyclic.a"]
