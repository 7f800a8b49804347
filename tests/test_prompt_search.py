"""Prompt search end to end: real echo workers whose answers depend on the prompt, real scoring.

The echo backend's ``oracle`` option answers a request with its reference only when the
prompt holds the marker, so the winners of each field are known before the search runs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, vlmhb_cmd, write_png

from vlmhb import api
from vlmhb.errors import PlanError, PromptError
from vlmhb.plan.prompts import load_prompts, read_v01_collection
from vlmhb.prompt_search.split import split_documents
from vlmhb.run.folder import iter_jsonl

MARK = "ВЕРНО"
PASSPORT = ("surname", "name", "birth_date")
SNILS = ("snils", "surname")


def make_two_type_dataset(root: Path, n_passports: int = 10, n_snils: int = 6) -> Path:
    """A native dataset of passports and SNILS cards with real PNGs."""
    lines = []
    for doc_type, fields, count in (("passport", PASSPORT, n_passports), ("snils", SNILS, n_snils)):
        for index in range(count):
            doc_id = f"{doc_type}{index:02d}"
            write_png(root / "images" / f"{doc_id}.png", f"{doc_type[0]}{index:02d}")
            values = {f: f"{f}-{doc_id}" for f in fields}
            lines.append(
                {
                    "id": doc_id,
                    "image": f"images/{doc_id}.png",
                    "doc_type": doc_type,
                    "fields": values,
                }
            )
    (root / "annotations.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), "utf-8"
    )
    return root


def collection(path: Path, name: str, doc_types: dict) -> Path:
    body = {
        "version": 1,
        "name": name,
        "defaults": {"field": "Поле {field_label}", "document": "Поля {fields_json}"},
        "doc_types": doc_types,
    }
    path.write_text(json.dumps(body, ensure_ascii=False), "utf-8")
    return path


def marked(*fields: str) -> dict:
    return {"fields": {f: {"prompt": f"{MARK}: напиши {{field_label}}"} for f in fields}}


@pytest.fixture
def setup(tmp_path: Path, answer_cache: Path) -> dict:
    dataset = make_two_type_dataset(tmp_path / "ds")
    a = collection(tmp_path / "a.json", "a", {"passport": marked("surname", "name")})
    b = collection(
        tmp_path / "b.json",
        "b",
        {"passport": marked("name", "birth_date"), "snils": marked("snils")},
    )
    oracle = {"oracle": str(dataset), "oracle_marker": MARK}
    return {"dataset": str(dataset), "a": str(a), "b": str(b), "load": oracle, "tmp": tmp_path}


def _search(setup: dict, runs: Path, candidates: list[str], **options) -> object:
    return api.search_prompts(
        dataset=setup["dataset"],
        backend="echo",
        model="echo-oracle",
        candidates=candidates,
        load=setup["load"],
        runs_dir=runs,
        isolation="local",
        **options,
    )


def _by_unit(result) -> dict:
    return {(s.doc_type, s.field): s for s in result.selections}


def test_search_finds_the_known_winners_with_ties_and_confirm_scores(setup: dict) -> None:
    runs = setup["tmp"] / "runs"
    result = _search(setup, runs, [f"A={setup['a']}", f"B={setup['b']}"], confirm=0.3, seed=7)
    assert len(result.split.confirm) == 5  # 3 of 10 passports, 2 of 6 SNILS cards
    units = _by_unit(result)
    surname = units[("passport", "surname")]
    assert (surname.winner, surname.verdict, surname.default_verdict) == ("A", "win", "win")
    assert surname.vs_runner_up.value == 1.0 and not surname.vs_runner_up.includes_zero
    name = units[("passport", "name")]  # A and B both carry the marker: a tie, not a win
    assert name.winner == "A" and name.runner_up == "B", name
    assert name.verdict == "tie", (name.vs_runner_up, name.scores)
    assert name.vs_runner_up.value == 0.0 and name.default_verdict == "win"
    assert units[("passport", "birth_date")].winner == "B"
    assert units[("snils", "snils")].winner == "B"
    nobody = units[("snils", "surname")]  # no candidate asks it well: the default stays
    assert nobody.winner == "default" and nobody.verdict == "tie"
    assert nobody.default_verdict == "is-default"
    # Winners are reported on the held-out documents, which they were not chosen on.
    assert surname.confirm["A"].value == 1.0 and surname.confirm["default"].value == 0.0
    assert surname.confirm["A"].n == 3 and surname.scores["A"].n == 7
    assert surname.confirm_vs_default.value == 1.0
    saved = json.loads((result.folder / "prompt_search.json").read_text("utf-8"))
    assert saved["version"] == 1 and saved["n_confirm_docs"] == 5
    assert [c["name"] for c in saved["candidates"]] == ["default", "A", "B"]


def test_merged_collection_repeats_the_winners_answers_from_the_cache(
    setup: dict, write_plan
) -> None:
    runs = setup["tmp"] / "runs"
    result = _search(setup, runs, [f"A={setup['a']}", f"B={setup['b']}"])
    merged = load_prompts(str(result.merged_json))
    surname = merged.model.doc_types["passport"].fields["surname"]
    provenance = surname.meta["provenance"]
    assert provenance["candidate"] == "A" and provenance["metric"] == "exact"
    assert provenance["n"] == 10 and provenance["run_id"] == result.runs["A"].prepared.run_id
    plan = write_plan(
        [
            {
                "dataset": setup["dataset"],
                "backend": "echo",
                "model": "echo-oracle",
                "prompts": str(result.merged_json),
                "load": setup["load"],
            }
        ],
        "merged.csv",
    )
    (outcome,) = api.run_plan(plan, runs_dir=runs, isolation="local", progress=False).runs
    assert outcome.status == "done", outcome.error
    assert outcome.counts["answered_now"] == 0 and outcome.counts["reused"] == 42
    assert outcome.overall["exact_match"] == pytest.approx(36 / 42)  # all but snils.surname
    answers = {a["id"]: a["answer"] for a in iter_jsonl(outcome.prepared.run_dir / "answers.jsonl")}
    for s in result.selections:
        if s.field == "(all)":
            continue
        winner_dir = result.runs[s.winner].prepared.run_dir
        for line in iter_jsonl(winner_dir / "answers.jsonl"):
            if line["doc_type"] == s.doc_type and line["field"] == s.field:
                assert answers[line["id"]] == line["answer"]
    # The v0.1 layout: prompt;doc_class_question_type;cer, read back as v0.1 reads it.
    assert result.merged_csv.read_bytes().startswith(b"\xef\xbb\xbfprompt;doc_class_question_type")
    v01 = read_v01_collection(result.merged_csv)
    for doc_type, kind in merged.model.doc_types.items():
        for field_name, spec in kind.fields.items():
            assert v01.model.doc_types[doc_type].fields[field_name].prompt == spec.prompt
    assert v01.model.doc_types["passport"].fields["surname"].meta["cer"] == "0"


def test_one_extra_candidate_asks_only_for_itself(setup: dict) -> None:
    first = _search(setup, setup["tmp"] / "runs", [f"A={setup['a']}"], report=False)
    assert all(o.counts["answered_now"] == 42 for o in first.runs.values())
    extra = _search(
        setup, setup["tmp"] / "fresh", [f"A={setup['a']}", f"B={setup['b']}"], report=False
    )
    assert extra.runs["default"].counts["reused"] == 42
    assert extra.runs["A"].counts["reused"] == 42
    # B asks the passport name (marked in both) and the SNILS surname (both fall back to
    # "Поле {field_label}") word for word as A did: only the rest is new.
    assert extra.runs["B"].counts["reused"] == 10 + 6
    assert sum(o.counts["answered_now"] for o in extra.runs.values()) == 42 - 16


def test_document_mode_merges_one_template_per_document_type(setup: dict, write_plan) -> None:
    tmp = setup["tmp"]
    passport_doc = collection(
        tmp / "pd.json", "pd", {"passport": {"document": f"{MARK} {{fields_json}}"}}
    )
    snils_doc = collection(tmp / "sd.json", "sd", {"snils": {"document": f"{MARK} {{fields}}"}})
    result = _search(setup, tmp / "runs", [f"P={passport_doc}", f"S={snils_doc}"], mode="document")
    units = _by_unit(result)
    assert units[("passport", "(all)")].winner == "P"
    assert units[("snils", "(all)")].winner == "S"
    assert result.merged_csv is None  # v0.1 collections ask one question per field
    plan = write_plan(
        [
            {
                "dataset": setup["dataset"],
                "backend": "echo",
                "model": "echo-oracle",
                "prompts": str(result.merged_json),
                "mode": "document",
                "load": setup["load"],
            }
        ],
        "merged.csv",
    )
    (outcome,) = api.run_plan(plan, runs_dir=tmp / "runs", isolation="local", progress=False).runs
    assert outcome.counts["answered_now"] == 0 and outcome.counts["reused"] == 16
    assert outcome.overall["exact_match"] == 1.0


def test_split_is_seeded_and_stratified() -> None:
    docs = {f"p{i}": "passport" for i in range(10)} | {f"s{i}": "snils" for i in range(3)}
    split = split_documents(docs, 0.3, seed=1)
    assert split == split_documents(docs, 0.3, seed=1)
    assert split.confirm != split_documents(docs, 0.3, seed=2).confirm
    assert sum(d.startswith("p") for d in split.confirm) == 3
    assert sum(d.startswith("s") for d in split.confirm) == 1
    assert split.search | split.confirm == set(docs) and not split.search & split.confirm
    assert not split_documents(docs, 0.0, seed=1).confirm
    assert split_documents({"only": "passport"}, 0.5, 0).search == {"only"}
    with pytest.raises(ValueError, match="confirm"):
        split_documents(docs, 1.0, 0)


def _v01_prompt_eval_plan(root: Path, framework: str = "echo") -> Path:
    """A v0.1 prompt-evaluation plan over the project's own v0.1 tree: one row per collection,
    each filtered to one document class and question, as v0.1's user_config_prompt_eval.csv."""
    from fixtures_v01 import NAME, PROMPT_FILES, TASK, write_v01_tree

    write_v01_tree(root)
    header = (
        "dataset;task;framework;model_name;system_prompt;prompt_collection;metrics;"
        "only_evaluate_metrics;metrics_aggregators;filter_doc_class;filter_question_type"
    )
    rows = [
        f"{NAME};{TASK};{framework};Qwen2-VL-2B-Instruct;;{NAME}/{name};['CER'];False;"
        "['by_id'];passport;Фамилия"
        for name in PROMPT_FILES
    ]
    plan = root / "user_config_prompt_eval.csv"
    plan.write_text("\ufeff" + "\n".join([header, *rows]) + "\n", "utf-8")
    return plan


def test_v01_prompt_eval_plan_is_a_search_over_its_rows(tmp_path: Path, answer_cache) -> None:
    plan = _v01_prompt_eval_plan(tmp_path / "v01")
    result = api.search_prompts(plan=plan, runs_dir=tmp_path / "runs", isolation="local")
    names = list(result.runs)
    assert names[0] == "default" and len(names) == 3
    # Each row asked only the filtered document type and question, the default too.
    assert {(s.doc_type, s.field) for s in result.selections} == {
        ("passport", "Фамилия"),
        ("passport", "(all)"),
    }
    assert [o.counts["samples"] for o in result.runs.values()] == [2, 2, 2]  # 2 passports
    # Echo repeats the prompt: no candidate reads a surname, so nothing wins.
    assert all(s.verdict == "tie" and s.winner == "default" for s in result.selections)


def test_plan_rows_of_different_models_are_refused(tmp_path: Path, write_plan) -> None:
    plan = write_plan(
        [
            {"dataset": "synth:demo", "backend": "echo", "model": "m1"},
            {"dataset": "synth:demo", "backend": "echo", "model": "m2"},
        ]
    )
    with pytest.raises(PlanError, match=r"plan\.csv:3:model: a prompt search asks one model"):
        api.search_prompts(plan=plan, runs_dir=tmp_path / "runs")


def test_cli_search_prints_winners_and_refuses_bad_input(setup: dict) -> None:
    tmp = setup["tmp"]
    base = [
        "prompts",
        "search",
        "--dataset",
        setup["dataset"],
        "--backend",
        "echo",
        "--model",
        "echo-oracle",
        "--load",
        json.dumps(setup["load"]),
        "--runs-dir",
        str(tmp / "runs"),
        "--isolation",
        "local",
    ]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            vlmhb_cmd(*base, *args), cwd=REPO, capture_output=True, text=True, check=False
        )

    ok = cli("--candidate", f"A={setup['a']}", "--confirm", "0.3", "--doc-types", "passport")
    assert ok.returncode == 0, ok.stderr
    assert "A (win)" in ok.stdout and "merged.json" in ok.stdout
    assert "0 reused from the cache, 30 asked" in ok.stderr
    bad_metric = cli("--candidate", setup["a"], "--metric", "nosuch", "--limit", "1")
    assert bad_metric.returncode == 2 and "unknown metric 'nosuch'" in bad_metric.stderr
    typo = collection(
        tmp / "typo.json", "typo", {"passport": {"fields": {"name": {"prompt": "{feild}"}}}}
    )
    bad = cli("--candidate", str(typo))
    assert bad.returncode == 2
    assert "typo.json:doc_types.passport.fields.name.prompt: unknown placeholder {feild}" in (
        bad.stderr
    )


def test_v01_collection_placeholders_are_checked_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "\ufeffprompt;doc_class_question_type;cer\n"
        "Напиши {field_label};passport Фамилия;0.0\n"
        "Напиши {feild};passport Имя;0.0\n",
        "utf-8",
    )
    with pytest.raises(PromptError, match=r"c\.csv:3:prompt: unknown placeholder \{feild\}"):
        read_v01_collection(path)


def test_candidates_times_system_prompts_with_the_default_first() -> None:
    from vlmhb.prompt_search import spec_from_options

    spec = spec_from_options(
        dataset="synth:demo",
        backend="echo",
        model="m",
        collections=["terse=a.json", "b.csv"],
        systems=["Кратко.", "Подробно."],
        mode="document",
        limit=2,
    )
    names = [c.name for c, _ in spec.runs]
    assert names == [
        "default",
        "terse + system 1",
        "terse + system 2",
        "b + system 1",
        "b + system 2",
    ]
    runs = dict((c.name, r) for c, r in spec.runs)
    assert (
        runs["b + system 2"].system_prompt == "Подробно."
        and runs["b + system 2"].prompts == "b.csv"
    )
    assert runs["default"].prompts is None and runs["default"].system_prompt is None
    assert all(r.mode == "document" and r.limit == 2 for r in runs.values())
    with pytest.raises(PlanError, match="duplicate candidate name 'x'"):
        spec_from_options(
            dataset="synth:demo", backend="echo", model="m", collections=["x=a.json", "x=b.json"]
        )


def test_lower_is_better_metrics_pick_the_lowest_error() -> None:
    import pandas as pd

    from vlmhb.prompt_search.select import select_winners

    def frame(errors: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "doc_id": [f"d{i}" for i in range(len(errors))],
                "doc_type": "passport",
                "field": "surname",
                "cer": errors,
            }
        )

    docs = frozenset(f"d{i}" for i in range(6))
    selections = select_winners(
        {
            "default": frame([0.5] * 6),
            "good": frame([0.0] * 6),
            "noisy": frame([0.0, 0.0, 1.0] * 2),
        },
        ["default", "good", "noisy"],
        "default",
        "cer",
        docs,
        frozenset(),
        seed=3,
    )
    field = next(s for s in selections if s.field == "surname")
    assert field.winner == "good" and field.runner_up == "noisy"
    assert field.vs_default.value == -0.5 and field.default_verdict == "win"
    # good beats noisy on two documents of six: a resample without them is too likely (4/6)^6
    # for the difference to be told from zero. A tie, however good the mean looks.
    assert field.vs_runner_up.value == pytest.approx(-1 / 3)
    assert field.vs_runner_up.high == 0.0 and field.verdict == "tie"
