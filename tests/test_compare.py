"""``vlmhb compare``: paired, document-clustered bootstrap deltas between two scored runs.

The runs are folders holding ``metrics/by_sample.parquet`` in the shape the metrics stage
writes (docs/architecture.md), with known differences planted in them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, vlmhb_cmd

from vlmhb.gate.compare import ALL_FIELDS, CompareError, bootstrap_delta, compare_runs

FIELDS = ("surname", "name", "birth_date")


def write_run(
    root: Path, name: str, exact: dict[str, np.ndarray], cer: dict[str, np.ndarray]
) -> Path:
    """A scored run folder: one by_sample row per (doc, field)."""
    rows = []
    for field in FIELDS:
        for doc, (e, c) in enumerate(zip(exact[field], cer[field], strict=True)):
            rows.append(
                {
                    "sample_id": f"doc{doc:03d}:{field}",
                    "doc_id": f"doc{doc:03d}",
                    "doc_type": "passport",
                    "field": field,
                    "exact": float(e),
                    "anls": float(e),
                    "cer": float(c),
                }
            )
    run_dir = root / name
    (run_dir / "metrics").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(run_dir / "metrics" / "by_sample.parquet")
    (run_dir / "run.json").write_text(json.dumps({"run_id": name, "dataset_hash": "h"}))
    return run_dir


def baseline(rng: np.random.Generator, n_docs: int = 60) -> tuple[dict, dict]:
    exact = {f: (rng.random(n_docs) < 0.8).astype(float) for f in FIELDS}
    cer = {f: np.where(exact[f] == 1, 0.0, rng.uniform(0.1, 0.6, n_docs)) for f in FIELDS}
    return exact, cer


def find(result, field: str, metric: str):
    (delta,) = [d for d in result.deltas if d.field == field and d.metric == metric]
    return delta


def test_a_planted_regression_is_flagged_and_noise_is_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    exact, cer = baseline(rng)
    a = write_run(tmp_path, "a", exact, cer)
    worse_exact = dict(exact, surname=np.where(rng.random(60) < 0.6, 0.0, exact["surname"]))
    worse_cer = dict(cer, surname=np.where(worse_exact["surname"] == 0, 0.5, 0.0))
    # name: one flipped sample only, within the noise
    flipped = exact["name"].copy()
    flipped[0] = 1 - flipped[0]
    b = write_run(tmp_path, "b", dict(worse_exact, name=flipped), worse_cer)
    result = compare_runs(a, b, metrics=("exact", "cer"), n_boot=1000)
    surname = find(result, "surname", "exact")
    assert surname.verdict == "regression" and surname.ci_high < 0
    assert surname.delta == pytest.approx(worse_exact["surname"].mean() - exact["surname"].mean())
    assert find(result, "surname", "cer").verdict == "regression"  # CER went up
    assert find(result, "name", "exact").verdict == ""
    assert find(result, "birth_date", "exact").delta == 0.0
    assert find(result, ALL_FIELDS, "exact").n_pairs == 180
    assert {d.field for d in result.regressions} >= {"surname"}
    assert "name" not in {d.field for d in result.regressions}
    # the same change read the other way round is an improvement
    back = compare_runs(b, a, metrics=("exact",), n_boot=500)
    assert find(back, "surname", "exact").verdict == "improvement"


def test_min_delta_and_identical_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    exact, cer = baseline(rng)
    a = write_run(tmp_path, "a", exact, cer)
    same = compare_runs(a, write_run(tmp_path, "same", exact, cer), n_boot=200)
    assert all(d.delta == 0 and d.verdict == "" for d in same.deltas)
    slightly = dict(exact, surname=np.where(np.arange(60) < 6, 0.0, exact["surname"]))
    b = write_run(tmp_path, "b", slightly, cer)
    drop = exact["surname"][:6].mean() / 10
    flagged = compare_runs(a, b, metrics=("exact",), n_boot=1000)
    tolerant = compare_runs(a, b, metrics=("exact",), n_boot=1000, min_delta=drop + 0.01)
    assert find(flagged, "surname", "exact").verdict == "regression"
    assert find(tolerant, "surname", "exact").verdict == ""


def test_bootstrap_resamples_documents_not_samples() -> None:
    rng = np.random.default_rng(0)
    same_everywhere = bootstrap_delta(
        np.repeat(["d1", "d2", "d3"], 4), np.full(12, -0.25), n_boot=200, rng=rng
    )
    assert same_everywhere == (-0.25, -0.25, -0.25)
    # one document holds all the change: clustering makes the CI reach zero
    docs = np.repeat([f"d{i}" for i in range(10)], 10)
    diffs = np.where(docs == "d0", -1.0, 0.0)
    delta, low, high = bootstrap_delta(docs, diffs, n_boot=2000, rng=rng)
    assert delta == pytest.approx(-0.1) and high == 0.0 and low < -0.1


def test_only_shared_samples_are_paired(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    exact, cer = baseline(rng, n_docs=20)
    a = write_run(tmp_path, "a", exact, cer)
    fewer = {f: v[:15] for f, v in exact.items()}
    b = write_run(tmp_path, "b", fewer, {f: v[:15] for f, v in cer.items()})
    result = compare_runs(a, b, n_boot=200)
    assert (result.only_a, result.only_b) == (15, 0)
    assert find(result, "surname", "exact").n_docs == 15


def test_cli_exit_codes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    exact, cer = baseline(rng)
    a = write_run(tmp_path, "a", exact, cer)
    b = write_run(tmp_path, "b", dict(exact, name=np.zeros(60)), cer)

    def compare(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            vlmhb_cmd("compare", *args), cwd=REPO, capture_output=True, text=True, timeout=60
        )

    gated = compare(str(a), str(b), "--fail-on-regression", "--n-boot", "500")
    assert gated.returncode == 3, gated.stderr
    assert "REGRESSION" in gated.stdout
    assert compare(str(a), str(b)).returncode == 0
    assert compare(str(a), str(a), "--fail-on-regression").returncode == 0
    unscored = tmp_path / "unscored"
    unscored.mkdir()
    missing = compare(str(a), str(unscored))
    assert missing.returncode == 2 and "by_sample" in missing.stderr
    with pytest.raises(CompareError, match="no column"):
        compare_runs(a, b, metrics=("bleu",))
