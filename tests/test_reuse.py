"""Reuse of earlier answers is said aloud; ``--fresh`` sets them aside and infers again."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb.run.reuse import reuse_note


def _vlmhb(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(vlmhb_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_reuse_note_counts() -> None:
    assert reuse_note({"answered": 108, "answered_now": 0}, "r1") == (
        "reused 108 answers (run r1); nothing inferred"
    )
    assert reuse_note({"answered": 10, "answered_now": 9}, "r1") == (
        "reused 1 answer (run r1); answered 9 now"
    )
    assert reuse_note({"answered": 5, "answered_now": 5}, "r1") is None
    assert reuse_note({}, "r1") is None


def test_second_run_says_it_reused_and_fresh_infers_again(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=3)
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}])
    runs = tmp_path / "runs"
    first = _vlmhb("run", str(plan), "--runs-dir", str(runs))
    assert "reused 9" not in first.stdout + first.stderr
    (run_dir,) = runs.iterdir()
    second = _vlmhb("run", str(plan), "--runs-dir", str(runs))
    said = f"reused 9 answers (run {run_dir.name}); nothing inferred"
    assert said in second.stderr and said in second.stdout
    fresh = _vlmhb("run", str(plan), "--runs-dir", str(runs), "--fresh")
    (old,) = runs.glob(f"{run_dir.name}.old-*")
    said = f"earlier answers of {run_dir.name} moved aside to {old}"
    assert fresh.stdout.index(said) < fresh.stdout.index("vlmhb run summary")  # said first
    assert "reused 9" not in fresh.stdout + fresh.stderr
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert record["counts"]["answered_now"] == 9
    assert len((old / "answers.jsonl").read_text("utf-8").splitlines()) == 9


def test_infer_prints_a_table(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}])
    runs = tmp_path / "runs"
    done = _vlmhb("infer", str(plan), "--runs-dir", str(runs))
    assert "inferred now" in done.stdout and "{" not in done.stdout
    again = _vlmhb("infer", str(plan), "--runs-dir", str(runs))
    assert "reused 6" in again.stdout
