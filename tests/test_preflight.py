"""Everything checkable is checked before a run: all problems of a plan, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb import api
from vlmhb.errors import PlanError
from vlmhb.plan.metric_names import METRIC_NAMES
from vlmhb.plan.plan_csv import load_plan


def _problems(plan: Path, **kwargs: object) -> list[str]:
    with pytest.raises(PlanError) as caught:
        api.prepare_plan(plan, runs_dir=plan.parent / "runs", **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vlmhb_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


BAD_ROWS: list[tuple[dict[str, object], str, str]] = [
    ({"backend": "tesseract", "model": "qwen25-vl-7b"}, "model", "unknown model 'qwen25-vl-7b'"),
    ({"backend": "hf", "model": "qwen25-vl-7b"}, "model", "did you mean"),
    ({"backend": "tesseract", "model": "Qwen/Qwen2.5-VL-7B-Instruct"}, "model", "tesseract"),
    ({"backend": "hf", "model": "tesseract-rus"}, "model", "does not run on backend 'hf'"),
    ({"metrics": "CER,WERR"}, "metrics", "unknown metric(s) WERR"),
    ({"env": "../../etc"}, "env", "not a recipe name"),
    ({"env": "no-such-env"}, "env", "unknown env 'no-such-env'"),
    ({"generation": {"max_new_tokens": "abc"}}, "generation", "max_new_tokens"),
    ({"generation": {"temprature": 0.2}}, "generation", "temprature: unknown option"),
    ({"load": {"pass_env": 5}}, "load", "pass_env"),
    ({"load": {"pass_env": ["A B"]}}, "load", "not an environment variable name"),
    ({"load": {"psm": "six"}, "backend": "tesseract", "model": "tesseract-rus"}, "load", "psm"),
    ({"load": {"concurency": 4}, "backend": "openai", "model": "served"}, "load", "unknown option"),
    ({"doc_types": "pasport"}, "doc_types", "'pasport' matches no document"),
    ({"fields": "surnme"}, "fields", "'surnme' is no field"),
]


def test_every_bad_row_of_a_plan_is_listed_with_its_row_and_column(
    tmp_path: Path, write_plan
) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    rows = [{"dataset": "ds", "backend": "echo", "model": "m", **row} for row, _, _ in BAD_ROWS]
    plan = write_plan([*rows, {"dataset": "ds", "backend": "echo", "model": "good"}])
    problems = _problems(plan)
    for number, (_, column, text) in enumerate(BAD_ROWS, start=2):
        where = f"{plan}:{number}:{column}: "
        assert any(p.startswith(where) and text in p for p in problems), (where, text, problems)
    assert not any(f"{plan}:{len(BAD_ROWS) + 2}:" in p for p in problems)  # the good row


def test_the_cli_exits_2_lists_everything_and_writes_nothing(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "annotations.jsonl").write_text("")
    (tmp_path / "prompts.json").write_text('{"system": "x", "doc_types": ')  # cut short
    plan = write_plan(
        [
            {"dataset": "ds", "backend": "tesseract", "model": "qwen25-vl-7b"},
            {"dataset": "empty", "backend": "echo", "model": "m"},
            {"dataset": "ds", "backend": "echo", "model": "m", "metrics": "nope"},
            {"dataset": "ds", "backend": "echo", "model": "m", "prompts": "prompts.json"},
        ]
    )
    runs = tmp_path / "runs"
    result = _cli("run", str(plan), "--runs-dir", str(runs), "--isolation", "local")
    assert result.returncode == 2, result.stderr
    assert f"{plan}:2:model" in result.stderr
    assert f"{plan}:3:dataset" in result.stderr and "has no documents" in result.stderr
    assert f"{plan}:4:metrics" in result.stderr
    assert f"{tmp_path / 'prompts.json'}" in result.stderr  # the prompt collection, located
    assert "Traceback" not in result.stderr
    assert not runs.exists()


def _bad_annotations(root: Path) -> Path:
    make_dataset(root, n_docs=3)
    lines = (root / "annotations.jsonl").read_text().splitlines()
    lines.insert(1, "{not json")
    lines.append(lines[0])  # a duplicate id
    record = json.loads(lines[0])
    lines.append(json.dumps({**record, "id": "x1", "colour": "red"}))  # an unknown key
    (root / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_bad_annotation_lines_refuse_the_run_like_data_check(tmp_path: Path, write_plan) -> None:
    root = _bad_annotations(tmp_path / "ds")
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m"}])
    check = _cli("data", "check", str(root))
    assert check.returncode == 2
    runs = tmp_path / "runs"
    result = _cli("run", str(plan), "--runs-dir", str(runs), "--isolation", "local")
    assert result.returncode == 2
    annotations = root / "annotations.jsonl"
    for where in (f"{annotations}:2", f"{annotations}:5:id", f"{annotations}:6:colour"):
        assert where in result.stderr, (where, result.stderr)
        assert where in check.stdout
    assert not runs.exists()


def test_skip_bad_documents_is_explicit_counted_and_printed(tmp_path: Path, write_plan) -> None:
    root = _bad_annotations(tmp_path / "ds")
    (root / "images" / "doc0002.png").unlink()  # an unusable document besides the bad lines
    lines = (root / "annotations.jsonl").read_text().splitlines()
    record = json.loads(lines[2])  # doc0001: a field without a value, the other two fine
    record["fields"]["name"] = None
    lines[2] = json.dumps(record)
    (root / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m"}])
    runs = tmp_path / "runs"
    result = _cli(
        "run", str(plan), "--runs-dir", str(runs), "--isolation", "local", "--skip-bad-documents"
    )
    assert result.returncode == 0, result.stderr
    assert "skipped 5 bad document(s)" in result.stderr
    (record_path,) = runs.glob("*/run.json")
    record = json.loads(record_path.read_text())
    assert record["counts"]["skipped_documents"] == 5
    assert record["counts"]["documents"] == 1
    answers = (record_path.parent / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 3 and all(json.loads(a)["error"] is None for a in answers)


def test_ambiguous_sample_ids_are_refused_naming_both_documents(tmp_path: Path, write_plan) -> None:
    root = make_dataset(tmp_path / "ds", n_docs=1)
    record = json.loads((root / "annotations.jsonl").read_text())
    lines = [
        {**record, "id": "a", "fields": {"b:c": "1"}},
        {**record, "id": "a:b", "fields": {"c": "2"}},
    ]
    (root / "annotations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m"}])
    (problem,) = _problems(plan)
    assert f"{root / 'annotations.jsonl'}:2:id" in problem
    assert "'a:b:c'" in problem and "'a:b'" in problem and "'a'" in problem
    document_mode = write_plan(
        [{"dataset": "ds", "backend": "echo", "model": "m", "mode": "document"}], "doc.csv"
    )
    assert len(api.prepare_plan(document_mode, runs_dir=tmp_path / "runs")) == 1


def test_plan_rows_that_resolve_to_one_run_run_once(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan(
        [
            {"dataset": "ds", "backend": "echo", "model": "m", "name": "a", "batch_size": 2},
            {"dataset": "ds", "backend": "echo", "model": "m", "name": "b", "batch_size": 4},
        ]
    )
    (prepared,) = api.prepare_plan(plan, runs_dir=tmp_path / "runs")
    assert prepared.same_as == (f"{plan}:3",)
    result = _cli("run", str(plan), "--runs-dir", str(tmp_path / "runs"), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "same run as" in result.stderr
    (answers,) = (tmp_path / "runs").glob("*/answers.jsonl")
    assert len(answers.read_text().splitlines()) == 6


def test_a_cell_over_128_kb_and_a_duplicated_column_are_plan_errors(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(f'dataset,backend,model,name\nds,echo,m,"{"x" * 200_000}"\n')
    with pytest.raises(PlanError) as caught:
        load_plan(plan)
    assert f"{plan}:2: unreadable CSV" in str(caught.value)
    plan.write_text("dataset,backend,model,model\nds,echo,m,n\n")
    with pytest.raises(PlanError) as caught:
        load_plan(plan)
    assert f"{plan}:1:model: duplicated column" in str(caught.value)


def test_metric_names_table_matches_the_registry() -> None:
    from vlmhb.metrics import METRICS

    assert {name: tuple(spec.aliases) for name, spec in METRICS.items()} == METRIC_NAMES


def test_dry_run_on_the_demo_writes_nothing_anywhere(tmp_path: Path, write_plan) -> None:
    home, runs = tmp_path / "home", tmp_path / "runs"
    plan = write_plan([{"dataset": "synth:demo", "backend": "tesseract", "model": "tesseract-rus"}])
    result = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs), "--dry-run"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "VLMHB_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert "demo not generated yet" in result.stdout
    assert not home.exists() and not runs.exists()


@pytest.mark.parametrize(
    ("backend", "load", "generation"),
    [
        (
            "vllm",
            {"device": "cpu", "dtype": "float32", "max_model_len": 256, "seed": 0,
             "kv_cache_memory_bytes": 33554432, "limit_mm_per_prompt": {"image": 1}},
            {"temperature": 0.2, "top_p": 0.9, "stop": ["\n"]},
        ),
        ("hf", {"device": "cuda:1", "dtype": "bfloat16", "threads": 2}, {"max_new_tokens": 32}),
        ("sglang", {"tp_size": 2, "engine_args": {"x": 1}}, {"min_p": 0.1}),
        ("openai", {"base_url": "http://h/v1", "api_key_env": "KEY", "pass_env": ["A"]}, {}),
        ("tesseract", {"lang": "rus", "psm": 4, "tesseract_cmd": "/usr/bin/tesseract"}, {}),
        ("echo", {"answer": "x", "delay_s": 0.1}, {"seed": 1}),
    ],
)  # fmt: skip
def test_backend_options_accept_what_the_backends_take(
    backend: str, load: dict, generation: dict
) -> None:
    from vlmhb.plan.backend_options import option_problems

    assert option_problems(backend, load, generation) == []
