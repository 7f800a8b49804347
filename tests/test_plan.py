"""Plans: native and v0.1 dialects, and every bad-plan case reported with its location."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO, make_dataset, vlmhb_cmd
from fixtures_v01 import MODELS, V01Tree, write_v01_tree

from vlmhb.errors import PlanError
from vlmhb.plan.plan_csv import load_plan, parse_list_cell


def test_native_plan_reads_typed_rows(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds")
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "metrics": "cer,anls",
                "doc_types": "passport",
                "batch_size": "4",
                "load": {"delay_s": 0},
            },
            {
                "dataset": "ds",
                "backend": "tesseract",
                "model": "tesseract-rus",
                "mode": "document",
                "stages": "infer",
            },
        ]
    )
    runs = load_plan(plan, isolation="venv")
    assert [r.backend for r in runs] == ["echo", "tesseract"]
    assert runs[0].metrics == ("cer", "anls")
    assert runs[0].batch_size == 4 and runs[0].load == {"delay_s": 0}
    assert runs[1].stages == ("infer",) and runs[1].mode == "document"
    assert all(r.isolation == "venv" for r in runs)
    assert runs[0].gpu_count == 0


def test_v01_plan_parses_into_runs(tmp_path: Path) -> None:
    tree = write_v01_tree(tmp_path / "v01")
    runs = load_plan(tree.model_eval)
    assert len(runs) == 2
    first = runs[0]
    assert first.backend == "hf" and first.model == "Qwen2-VL-2B-Instruct"
    assert first.dataset == "Datasets/VQA/mini_ru"
    assert first.prompts == "PromptCollections/VQA/mini_ru/ours_field_prompts_a.csv"
    assert first.metrics == ("CER",)
    filtered = load_plan(tree.prompt_eval)
    assert filtered[0].doc_types == ("passport",)
    assert filtered[0].fields == ("Серия и номер паспорта",)


def test_v01_plan_read_in_place(v01_tree: V01Tree) -> None:
    runs = load_plan(v01_tree.model_eval)
    assert {r.model for r in runs} == set(MODELS)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("['CER', 'WER']", ["CER", "WER"]),
        ("cer,wer", ["cer", "wer"]),
        ("", []),
        ("a;b", ["a", "b"]),
    ],
)
def test_list_cells(cell: str, expected: list[str]) -> None:
    assert parse_list_cell(cell) == expected


def _problems(path: Path) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return [str(p) for p in caught.value.problems]


def test_every_problem_is_listed_with_file_row_column(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds")
    (tmp_path / "outside").mkdir()
    plan = write_plan(
        [
            {"dataset": "ds", "backend": "gpt5", "model": "m"},
            {"dataset": "nope", "backend": "echo", "model": "m"},
            {"dataset": "../outside", "backend": "echo", "model": "m"},
            {"dataset": "ds", "backend": "echo", "model": "m", "metrics": "['CER'"},
            {"dataset": "ds", "backend": "echo", "model": "m", "prompts": "missing.json"},
            {"dataset": "ds", "backend": "echo", "model": "m", "batch_size": "zero"},
        ]
    )
    problems = _problems(plan)
    text = "\n".join(problems)
    assert f"{plan}:2:backend:" in text
    assert f"{plan}:3:dataset:" in text and "does not exist" in text
    assert f"{plan}:4:dataset:" in text and "escapes" in text
    assert f"{plan}:5:metrics:" in text and "malformed list cell" in text
    assert f"{plan}:6:prompts:" in text
    assert f"{plan}:7:batch_size:" in text
    assert len(problems) == 6


def test_every_bad_cell_of_one_row_is_reported(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds")
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": "m",
                "metrics": "[x",
                "load": "[1]",
                "batch_size": "0",
            }
        ]
    )
    text = "\n".join(_problems(plan))
    assert f"{plan}:2:metrics:" in text and f"{plan}:2:load:" in text
    assert f"{plan}:2:batch_size:" in text


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("dataset,model,colour\nds,m,red\n", encoding="utf-8")
    text = "\n".join(_problems(plan))
    assert f"{plan}:1:backend: required column is missing" in text
    assert f"{plan}:1:colour: unknown column" in text


def test_v01_unknown_framework_and_bad_list(tmp_path: Path) -> None:
    plan = tmp_path / "v01.csv"
    header = "dataset;task;framework;model_name;system_prompt;prompt_collection;metrics"
    plan.write_text(
        "\ufeff" + header + "\r\ndemo;VQA;Caffe;m;;;['CER']\r\ndemo;VQA;Hugging Face;m;;;[CER\r\n",
        encoding="utf-8",
    )
    text = "\n".join(_problems(plan))
    assert f"{plan}:2:framework: unknown framework 'Caffe'" in text
    assert f"{plan}:3:metrics: malformed list cell" in text


def test_cli_bad_plan_exits_2_and_writes_nothing(tmp_path: Path, write_plan) -> None:
    plan = write_plan([{"dataset": "nope", "backend": "echo", "model": "m"}])
    runs = tmp_path / "runs"
    result = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs)),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2
    assert f"{plan}:2:dataset:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not runs.exists()
