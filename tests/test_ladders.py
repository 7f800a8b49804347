"""Robustness ladders: severity levels in the generator, the score, the report and compare.

The ladder dataset is rendered for real and read by real tesseract through a plan; the metrics
stage draws the curve from the by_tag table; the report and ``vlmhb compare`` show it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import vlmhb_cmd
from PIL import Image

from vlmhb.data import load_dataset
from vlmhb.data.synth.degrade import LADDER, SEVERITY, ladder_variants, parse_variant
from vlmhb.data.synth.generate import SynthConfig, synthesize
from vlmhb.metrics._robustness import area_ratio, robustness_ladders

LADDER_VARIANTS = ladder_variants()


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ladder") / "ds"
    synthesize(out, SynthConfig(kinds=("passport",), n=1, seed=3, variants=LADDER_VARIANTS), 1)
    return out


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=float)


def test_ladder_has_clean_and_four_levels_of_each_degradation(ladder: Path) -> None:
    assert LADDER_VARIANTS[0] == "clean" and len(LADDER_VARIANTS) == 1 + 4 * len(LADDER)
    docs = {d.id: d for d in load_dataset(str(ladder)).documents}
    assert len(docs) == len(LADDER_VARIANTS)
    assert docs["passport-0001"].tags == ("clean",)
    blur3 = docs["passport-0001-blur3"]
    assert blur3.tags == ("blur:3",) and blur3.meta["degradation"]["blur:3"] == {"radius": 1.9}
    assert docs["passport-0001-jpeg4"].images[0].suffix == ".jpg"
    stamp = docs["passport-0001-stamp2"].meta["degradation"]["stamp:2"]
    assert stamp["opacity"] == SEVERITY["stamp"][2] and stamp["over"] in blur3.fields
    with pytest.raises(ValueError, match="unknown degradation"):
        parse_variant("blur:7")
    with pytest.raises(ValueError, match="unknown degradation"):
        parse_variant("stamp")  # a stamp has a severity


def test_a_ladder_always_has_its_clean_document(tmp_path: Path) -> None:
    synthesize(tmp_path, SynthConfig(kinds=("snils",), n=1, variants=("noise:2",)), 1)
    docs = load_dataset(str(tmp_path)).documents
    assert [d.tags for d in docs] == [("clean",), ("noise:2",)]


def test_damage_grows_with_severity_and_is_deterministic(ladder: Path, tmp_path: Path) -> None:
    clean = _pixels(ladder / "images" / "passport-0001.png")
    for name in ("blur", "noise", "contrast", "jpeg", "stamp"):
        damage = []
        for level in (1, 2, 3, 4):
            path = next((ladder / "images").glob(f"passport-0001-{name}{level}.*"))
            damage.append(float(np.abs(_pixels(path) - clean).mean()))
        assert damage == sorted(damage) and damage[0] > 0, (name, damage)
    again = tmp_path / "again"
    synthesize(again, SynthConfig(kinds=("passport",), n=1, seed=3, variants=LADDER_VARIANTS), 2)
    for path in sorted((ladder / "images").iterdir()):
        assert (again / "images" / path.name).read_bytes() == path.read_bytes(), path.name


def test_area_ratio() -> None:
    assert area_ratio([1, 2, 3, 4], [0.8, 0.8, 0.8, 0.8], 0.8) == pytest.approx(1.0)
    # linear fall from 1.0 to 0 over four levels: half the area
    assert area_ratio([1, 2, 3, 4], [0.75, 0.5, 0.25, 0.0], 1.0) == pytest.approx(0.5)
    assert area_ratio([1, 2], [0.5, 0.5], 0.0) is None
    table = pd.DataFrame(
        [
            ("clean", "exact_match", 0.8, 0.7, 0.9, 10),
            ("blur:1", "exact_match", 0.8, 0.7, 0.9, 10),
            ("blur:2", "exact_match", 0.4, 0.3, 0.5, 10),
            ("noise", "exact_match", 0.1, 0.0, 0.2, 10),  # no severity: not a ladder
        ],
        columns=["tag", "metric", "value", "ci_low", "ci_high", "n"],
    )
    ladders = robustness_ladders(table)
    assert list(ladders["degradations"]) == ["blur"]
    # levels 0, 1, 2 at 1.0, 1.0, 0.5 of clean: (1 + 0.75) / 2
    assert ladders["score"] == pytest.approx(0.875)
    assert ladders["degradations"]["blur"]["levels"][2]["ci_low"] == 0.3


def _run(tmp_path: Path, write_plan, runs: str) -> Path:
    plan = write_plan(
        [{"dataset": "ds", "backend": "tesseract", "model": "tesseract-rus"}], name=f"{runs}.csv"
    )
    done = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(tmp_path / runs)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [run_dir] = [p for p in (tmp_path / runs).iterdir() if (p / "run.json").exists()]
    return run_dir


def test_tesseract_ladder_is_scored_reported_and_compared(
    tmp_path: Path, write_plan, ladder: Path
) -> None:
    import shutil

    # two ladders (blur, stamp) of one passport: 9 pages, to keep the OCR time short
    wanted = {"clean", *(v for v in LADDER_VARIANTS if v.startswith(("blur", "stamp")))}
    records = [
        line
        for line in (ladder / "annotations.jsonl").read_text("utf-8").splitlines()
        if set(json.loads(line)["tags"]) <= wanted
    ]
    shutil.copytree(ladder, tmp_path / "ds")
    (tmp_path / "ds" / "annotations.jsonl").write_text("\n".join(records) + "\n", "utf-8")
    run_a = _run(tmp_path, write_plan, "runs_a")
    metrics = json.loads((run_a / "metrics" / "metrics.json").read_text("utf-8"))
    ladders = metrics["robustness"]
    assert set(ladders["degradations"]) == {"blur", "stamp"}
    blur = ladders["degradations"]["blur"]
    assert [p["level"] for p in blur["levels"]] == [0, 1, 2, 3, 4]
    assert ladders["clean"]["value"] > 0.6
    assert 0 <= ladders["score"] <= 1.0 + 1e-9
    overall = pd.read_parquet(run_a / "metrics" / "overall.parquet").set_index("metric")
    assert overall.loc["robustness", "value"] == pytest.approx(ladders["score"])
    print(
        "\ntesseract robustness:",
        {name: round(d["score"], 3) for name, d in ladders["degradations"].items()},
        "overall",
        round(ladders["score"], 3),
    )

    html = (tmp_path / "runs_a" / "report.html").read_text("utf-8")
    assert 'id="robustness"' in html and 'id="ladder-blur"' in html and 'id="ladder-stamp"' in html
    summary = (tmp_path / "runs_a" / "summary.md").read_text("utf-8")
    assert "## Robustness" in summary and f"{ladders['score']:.3f}" in summary

    compared = subprocess.run(  # the run against itself: both columns show its scores
        vlmhb_cmd("compare", str(run_a), str(run_a)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert compared.returncode == 0, compared.stderr
    assert "Robustness (AUC relative to clean)" in compared.stdout
    assert f"{ladders['score']:.3f}" in compared.stdout
