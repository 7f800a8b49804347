"""Scoring whole run folders: v0.1 ground truth, VLM-style answers, modes, CLI subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fixtures_v01 import v01_references

from vlmhb.metrics import score_run

REPO = Path(__file__).resolve().parents[1]


def field_answers(refs: list[dict[str, Any]], overrides: dict[tuple[str, str], str] | None = None):
    """Perfect field-mode answer lines, with some answers replaced."""
    lines = []
    for ref in refs:
        for name, value in ref["fields"].items():
            answer = (overrides or {}).get((ref["doc_id"], name), value)
            lines.append(
                {
                    "version": 1,
                    "id": f"{ref['doc_id']}:{name}",
                    "doc_id": ref["doc_id"],
                    "doc_type": ref["doc_type"],
                    "field": name,
                    "mode": "field",
                    "answer": answer,
                    "error": None,
                }
            )
    return lines


def write_run(
    folder: Path, refs: list[dict], answers: list[dict], mode: str = "field", metrics: Any = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dump = "".join
    (folder / "references.jsonl").write_text(
        dump(json.dumps(r, ensure_ascii=False) + "\n" for r in refs), encoding="utf-8"
    )
    (folder / "answers.jsonl").write_text(
        dump(json.dumps(a, ensure_ascii=False) + "\n" for a in answers), encoding="utf-8"
    )
    run = {"version": 1, "run_id": folder.name, "mode": mode, "metrics": metrics}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


def overall(result: dict[str, Any]) -> dict[str, float]:
    return result["overall"]


def test_v01_ground_truth_against_itself_is_perfect(tmp_path: Path) -> None:
    refs = v01_references()
    assert len(refs) == 4 and sum(len(r["fields"]) for r in refs) == 22
    result = score_run(write_run(tmp_path / "run", refs, field_answers(refs)), n_boot=200)
    scores = overall(result)
    assert scores["exact_match"] == 1.0 and scores["anls"] == 1.0
    assert scores["cer_micro"] == 0.0 and scores["wer_macro"] == 0.0 and scores["ned"] == 0.0
    assert scores["missing_answer_rate"] == 0.0
    assert result["n_samples"] == 22 and result["n_docs"] == 4


VLM_STYLE = {
    ("1", "Фамилия"): "Фамилия: Жаворонков",
    ("1", "Серия и номер паспорта"): "4512 381902",
    ("1", "Дата рождения"): "7 марта 1991",
    ("1", "Пол"): "Муж.",
    ("2", "Имя"): "Вuктория",  # a Latin 'u' is no homoglyph of 'и': stays an error
    ("2", "Фамилия"): "Селeзнева",  # Latin 'e' inside a Cyrillic word
    ("2", "Дата рождения"): "14.06.83",
    ("3", "Дата счет-фактуры"): "21.03.2011",
    ("3", "Покупатель"): 'ЗАО "Ветров—Лисицын".',
    ("4", "Номер счет-фактуры"): "№ 52",
    ("4", "Продавец"): "ООО Рога и копыта",  # simply wrong
}


def test_vlm_style_answers_score_as_the_normalization_promises(tmp_path: Path) -> None:
    refs = v01_references()
    run = write_run(tmp_path / "run", refs, field_answers(refs, VLM_STYLE))
    result = score_run(run, n_boot=200)
    table = pd.read_parquet(run / "metrics" / "by_sample.parquet").set_index("sample_id")
    wrong = {"2:Имя", "4:Продавец"}
    for (doc, name), answer in VLM_STYLE.items():
        row = table.loc[f"{doc}:{name}"]
        assert row["answer"] == answer
        assert row["exact_raw"] == 0.0
        assert row["exact"] == (0.0 if f"{doc}:{name}" in wrong else 1.0), row["answer_norm"]
    assert table.loc["2:Имя", "anls"] == pytest.approx(1 - 1 / 8)
    assert result["mixed_script_answers"] == 2  # Вuктория and Селeзнева
    assert overall(result)["exact_match"] == pytest.approx(20 / 22)
    assert overall(result)["mixed_script_answers"] == 2
    assert overall(result)["exact_match_raw"] == pytest.approx(11 / 22)
    assert overall(result)["cer_raw_micro"] > overall(result)["cer_micro"]


def test_join_is_by_id_first_line_wins_missing_and_errors_count_as_empty(tmp_path: Path) -> None:
    refs = v01_references()[:2]
    answers = list(reversed(field_answers(refs)))
    dropped = answers.pop(0)  # last field of doc 2: missing
    errored = next(a for a in answers if a["id"] == "1:Имя")
    errored.update(answer="", error="worker crashed")
    del next(a for a in answers if a["id"] == "1:Фамилия")["field"]  # field only in the id
    answers.append({**answers[-1], "answer": "дубликат"})  # a later duplicate is ignored
    answers.append({**answers[0], "doc_id": "99", "id": "99:Фамилия"})  # unknown document
    result = score_run(write_run(tmp_path / "run", refs, answers), n_boot=50)
    table = pd.read_csv(tmp_path / "run/metrics/by_sample.csv").set_index("sample_id")
    assert table.loc[f"2:{dropped['field']}", "missing"]
    assert table.loc[f"2:{dropped['field']}", "exact"] == 0
    assert table.loc["1:Имя", "error"] == "worker crashed" and table.loc["1:Имя", "exact"] == 0
    assert result["missing_answers"] == 1 and result["errored_answers"] == 1
    assert result["duplicate_answers"] == 1 and result["unmatched_answers"] == 1
    assert overall(result)["missing_answer_rate"] == pytest.approx(1 / 14)
    assert overall(result)["exact_match"] == pytest.approx(12 / 14)


def _doc(doc_id: str, fields: dict[str, str], tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "doc_type": "passport",
        "fields": fields,
        "text": None,
        "tags": tags or [],
        "images": [],
    }


def _doc_answer(doc_id: str, answer: str, error: str | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "id": doc_id,
        "doc_id": doc_id,
        "field": None,
        "mode": "document",
        "answer": answer,
        "error": error,
    }


def test_document_mode_parses_leniently_and_counts_failures(tmp_path: Path) -> None:
    fields = {"surname": "Осипов", "name": "Иван", "birth_date": "13.09.1985"}
    refs = [_doc(f"d{i}", fields) for i in range(6)] + [_doc("empty", {})]
    answers = [
        _doc_answer(
            "d0",
            '```json\n{"surname": "Осипов", "name": "Иван", '
            '"birth_date": "13 сентября 1985",}\n```\nГотово.',
        ),
        _doc_answer("d1", "Ответ: {'Фамилия': 'Осипов', 'Имя': 'Пётр', 'отчество': 'Ильич'}"),
        _doc_answer("d2", "Фамилия Осипов, имя Иван"),  # not JSON: a failure, not {}
        _doc_answer("d3", '{"surname": "Осипов"}'),  # two fields missing
        _doc_answer("d4", "", error="timeout"),
        _doc_answer("d5", ""),  # answered with nothing: a parse failure
    ]
    result = score_run(write_run(tmp_path / "run", refs, answers, mode="document"), n_boot=100)
    scores = overall(result)
    # predicted pairs: d0 3, d1 3 (one invented), d3 1 -> 7; correct: d0 3, d1 1, d3 1 -> 5
    assert scores["field_precision"] == pytest.approx(5 / 7)
    assert scores["field_recall"] == pytest.approx(5 / 18)
    assert scores["field_f1"] == pytest.approx(2 * 5 / (7 + 18))
    # d4 failed (counted by errored_answers); "empty" has no answer line (missing)
    assert scores["json_parse_failure_rate"] == pytest.approx(2 / 5)
    assert scores["missing_field_rate"] == pytest.approx(3 / 9)  # over parsed docs d0 d1 d3
    assert scores["invented_field_rate"] == pytest.approx(1 / 7)
    table = pd.read_parquet(tmp_path / "run/metrics/by_sample.parquet").set_index("sample_id")
    assert not table.loc["d2:surname", "json_ok"] and table.loc["d0:surname", "json_ok"]
    assert table.loc["d1:surname", "field_present"] and not table.loc["d3:name", "field_present"]
    by_field = pd.read_csv(tmp_path / "run/metrics/by_field.csv")
    recall = by_field.query("field == 'surname' and metric == 'field_recall'")["value"].item()
    assert recall == pytest.approx(3 / 6)


def test_text_mode_scores_the_transcription(tmp_path: Path) -> None:
    page = "ПАСПОРТ\nФамилия Осипов\nИмя Иван"
    refs = [{**_doc("p1", {}), "text": page}, {**_doc("p2", {}), "text": page}]
    answers = [
        {**_doc_answer("p1", "паспорт фамилия осипов имя иван"), "mode": "text"},
        {**_doc_answer("p2", "паспорт фамилия осипов"), "mode": "text"},
    ]
    result = score_run(write_run(tmp_path / "run", refs, answers, mode="text"), n_boot=50)
    table = pd.read_parquet(tmp_path / "run/metrics/by_sample.parquet").set_index("sample_id")
    assert table.loc["p1", "cer"] == 0.0 and table.loc["p1", "field"] == "text"
    assert table.loc["p2", "wer"] == pytest.approx(2 / 5)
    assert overall(result)["wer_micro"] == pytest.approx(2 / 10)
    by_tag = pd.read_csv(tmp_path / "run/metrics/by_tag.csv")
    assert set(by_tag["tag"]) == {"untagged"}


def test_bootstrap_is_seeded_and_clustered_by_document(tmp_path: Path) -> None:
    fields = {f"f{i}": "да" for i in range(20)}
    refs = [_doc("good", fields, ["blur"]), _doc("bad", fields, ["blur", "rotate"])]
    answers = field_answers([refs[0]]) + field_answers(
        [refs[1]], {("bad", f): "нет" for f in fields}
    )
    run = write_run(tmp_path / "run", refs, answers)
    first = score_run(run, seed=7, n_boot=300)
    again = score_run(run, seed=7, n_boot=300)
    assert first == again
    table = pd.read_csv(run / "metrics/overall.csv").set_index("metric")
    # Resampling the two documents (not the 40 samples) gives the whole [0, 1] range.
    assert table.loc["exact_match", "value"] == 0.5
    assert table.loc["exact_match", "ci_low"] == 0.0 and table.loc["exact_match", "ci_high"] == 1.0
    by_tag = pd.read_csv(run / "metrics/by_tag.csv")
    exact = by_tag[by_tag.metric == "exact_match"].set_index("tag")["value"]
    assert exact.to_dict() == {"blur": 0.5, "rotate": 0.0}


def test_cli_subprocess_writes_every_table_without_orchestrator_modules(tmp_path: Path) -> None:
    refs = v01_references()
    run = write_run(tmp_path / "run", refs, field_answers(refs, VLM_STYLE), metrics="CER,WER,BLEU")
    probe = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'pydantic', 'click', 'rich'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from vlmhb.metrics.__main__ import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'pydantic', 'click', 'rich'}\n"
        "             or (m.startswith('vlmhb.') and not m.startswith('vlmhb.metrics')\n"
        "                 and m not in {'vlmhb.run', 'vlmhb.run.files', 'vlmhb.form_labels',\n"
        "                               'vlmhb.validity'}))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(run), "--seed", "3", "--n-boot", "200"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "scored 22 samples of 4 documents" in done.stdout
    out = run / "metrics"
    for name in ("by_sample", "by_field", "by_doc_type", "by_tag", "overall"):
        parquet, text = pd.read_parquet(out / f"{name}.parquet"), pd.read_csv(out / f"{name}.csv")
        assert len(parquet) == len(text) > 0
    assert list(pd.read_csv(out / "by_doc_type.csv").columns) == [
        "doc_type",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n",
    ]
    info = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert info["version"] == 1 and info["metrics"][-1] == "bleu"
    assert info["normalization"]["yo_to_ye"] is True and info["ci"]["seed"] == 3
    assert {"rapidfuzz", "numpy", "pandas", "pyarrow", "sacrebleu"} <= set(info["versions"])
    plain = subprocess.run(
        [sys.executable, "-m", "vlmhb.metrics", str(run), "--no-yo-fold", "--n-boot", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    info = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert info["normalization"]["yo_to_ye"] is False


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no_references", "references.jsonl: file not found"),
        ("bad_answer_line", "answers.jsonl:2: not JSON"),
        ("unknown_metric", "unknown metric 'rouge'"),
        ("no_documents", "references.jsonl: nothing to score in field mode"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, setup: str, message: str) -> None:
    refs = v01_references()[:1]
    run = write_run(tmp_path / "run", refs, field_answers(refs))
    args = []
    if setup == "no_references":
        (run / "references.jsonl").unlink()
    elif setup == "bad_answer_line":
        with (run / "answers.jsonl").open("r+", encoding="utf-8") as handle:
            first = handle.readline()
            handle.seek(0)
            handle.write(first + "{broken\n")
            handle.truncate()
    elif setup == "no_documents":
        (run / "references.jsonl").write_text("", encoding="utf-8")
    else:
        args = ["--metrics", "cer,rouge"]
    done = subprocess.run(
        [sys.executable, "-m", "vlmhb.metrics", str(run), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
