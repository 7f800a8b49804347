"""A built env whose installed files were changed fails ``env check`` and is refused by a run.

Real uv builds of the ``tesseract`` env into a private ``VLMHB_HOME`` (fixtures from
``test_envs``); files are replaced, never edited in place, because installed files are hard
links into the session's uv cache.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import make_dataset, vlmhb_cmd
from test_envs import REPO, home, root, shared_uv_cache  # noqa: F401 (fixtures)

from vlmhb import api
from vlmhb.envs import check_env, ensure_env
from vlmhb.errors import EnvError


def _replace(path: Path, text: str) -> None:
    path.unlink()  # break the hard link into the uv cache first
    path.write_text(text, encoding="utf-8")


def _installed(built_path: Path) -> Path:
    return next(built_path.glob("lib/python3*/site-packages/pytesseract/pytesseract.py"))


def test_an_edited_file_fails_check_and_the_run_is_refused(
    root: Path,  # noqa: F811
    home: Path,  # noqa: F811
    tmp_path: Path,
    write_plan,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = ensure_env("tesseract", root=root, home=home)
    assert check_env("tesseract", root=root, home=home).ok
    target = _installed(built.path)
    _replace(target, target.read_text(encoding="utf-8") + "\nprint('tampered')\n")

    report = check_env("tesseract", root=root, home=home)
    assert not report.ok
    assert "pytesseract/pytesseract.py (pytesseract-0.3.13: size differs" in report.details
    with pytest.raises(EnvError, match="refused: 1 installed file"):
        ensure_env("tesseract", root=root, home=home)

    cli = subprocess.run(
        vlmhb_cmd("env", "check", "tesseract", "--root", str(root), "--home", str(home)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 1 and "DRIFT" in cli.stdout, cli.stdout + cli.stderr

    monkeypatch.setenv("VLMHB_HOME", str(home))  # the run finds the tampered env by its hash
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan(
        [{"dataset": "ds", "backend": "tesseract", "model": "tesseract-rus", "stages": "infer"}]
    )
    result = api.run_plan(plan, runs_dir=tmp_path / "runs", isolation="venv", progress=False)
    (outcome,) = result.runs
    assert outcome.status == "failed"
    assert "env 'tesseract': refused" in (outcome.error or "")
    assert not list((tmp_path / "runs").glob("*/answers.jsonl"))


def test_a_same_size_edit_is_caught_by_the_hash_check(
    root: Path,  # noqa: F811
    home: Path,  # noqa: F811
) -> None:
    built = ensure_env("tesseract", root=root, home=home)
    target = _installed(built.path)
    text = target.read_text(encoding="utf-8")
    _replace(target, text.replace("import", "imqort", 1))
    report = check_env("tesseract", root=root, home=home)
    assert not report.ok
    assert "pytesseract/pytesseract.py (pytesseract-0.3.13: hash differs" in report.details


def test_bytecode_a_wheel_ships_may_be_rewritten(
    root: Path,  # noqa: F811
    home: Path,  # noqa: F811
) -> None:
    """Some wheels (numpy's) list ``__pycache__/*.pyc`` in RECORD; Python rewrites a stale one."""
    built = ensure_env("tesseract", root=root, home=home)
    target = _installed(built.path)
    record = next(built.path.glob("lib/python3*/site-packages/pytesseract-*.dist-info/RECORD"))
    pyc = "pytesseract/__pycache__/shipped.cpython-311.pyc"
    (target.parent / "__pycache__").mkdir(exist_ok=True)
    shipped = target.parent / "__pycache__" / "shipped.cpython-311.pyc"
    shipped.write_bytes(b"rewritten by the interpreter, longer than what the wheel held")
    original = record.read_text(encoding="utf-8")
    try:
        record.unlink()  # a hard link into the uv cache: replace, never edit in place
        record.write_text(original + f"{pyc},sha256=AAAA,12\n", encoding="utf-8")
        assert check_env("tesseract", root=root, home=home).ok
        ensure_env("tesseract", root=root, home=home)  # not refused
        shipped.unlink()  # a missing .pyc is as harmless: Python writes it again
        assert check_env("tesseract", root=root, home=home).ok
    finally:
        record.unlink()
        record.write_text(original, encoding="utf-8")
