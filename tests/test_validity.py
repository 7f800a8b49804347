"""Field validators on known valid and invalid numbers, generator values, and the metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from vlmhb.data.synth.values import VALUES
from vlmhb.metrics import score_run
from vlmhb.validity import DOC_TYPE_FIELDS, check, check_document

TODAY = dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("snils", "112-233-445 95"),
        ("snils", "11223344595"),
        ("snils", "001-001-997 00"),  # below 001-001-998: no checksum
        ("inn", "7707083893"),  # Sberbank
        ("inn_org", "7707 083 893"),
        ("inn", "500100732259"),
        ("inn_person", "500100732259"),
        ("ogrn", "1027700132195"),
        ("ogrnip", "304500116000157"),
        ("kpp", "773601001"),
        ("kpp", "7736AB001"),
        ("bik", "044525225"),
        ("passport_number", "4505 679944"),
        ("passport_number", "серия 45 05 № 679944"),
        ("department_code", "772-001"),
        ("date", "13.09.1985"),
        ("date", "28 сентября 2010 г."),
        ("date", "2000-02-29"),
        ("sex", "Муж."),
        ("sex", "ж"),
        ("amount", "13 488,61"),
        ("amount", "1234.50"),
        ("amount", "500 руб."),
    ],
)
def test_known_valid_values_pass(kind: str, value: str) -> None:
    assert check(kind, value, TODAY) is None


@pytest.mark.parametrize(
    ("kind", "value", "why"),
    [
        ("snils", "112-233-445 96", "checksum"),
        ("snils", "112-233-445 9", "11 digits"),
        ("inn", "7707083894", "check digit"),
        ("inn", "500100732258", "check digits"),
        ("inn_org", "500100732259", "10 digits"),
        ("inn_person", "7707083893", "12 digits"),
        ("inn", "77O7083893", "other than digits"),  # a Latin O read for a zero
        ("ogrn", "1027700132194", "check digit"),
        ("ogrnip", "304500116000158", "check digit"),
        ("kpp", "77360100", "4 digits"),
        ("kpp", "000001001", "0000"),
        ("bik", "144525225", "04"),
        ("passport_number", "4505 67994", "10 digits"),
        ("passport_number", "0005 679944", "region 00"),
        ("department_code", "775-001", "0-3"),
        ("department_code", "772001x", "NNN-NNN"),
        ("date", "31.02.1985", "calendar"),
        ("date", "13.13.1985", "calendar"),
        ("date", "01.01.2030", "future"),
        ("date", "01.01.1850", "before 1900"),
        ("sex", "мужик", "sex"),
        ("amount", "12,345,67", "amount"),
        ("snils", "", "empty"),
    ],
)
def test_known_invalid_values_fail(kind: str, value: str, why: str) -> None:
    reason = check(kind, value, TODAY)
    assert reason is not None and why in reason


def test_issue_date_follows_birth_by_fourteen_years() -> None:
    types = {"birth_date": "birth_date", "issue_date": "issue_date"}
    ok = check_document(types, {"birth_date": "01.03.1990", "issue_date": "01.03.2004"}, TODAY)
    assert ok == {"birth_date": None, "issue_date": None}
    young = check_document(types, {"birth_date": "01.03.1990", "issue_date": "28.02.2004"}, TODAY)
    assert young["issue_date"] == "issued before the age of 14"
    before = check_document(types, {"birth_date": "01.03.1990", "issue_date": "01.03.1980"}, TODAY)
    assert before["issue_date"] == "issued before birth"
    # a birth date that is itself invalid does not condemn the issue date
    unknown = check_document(types, {"birth_date": "31.02.1990", "issue_date": "01.03.1980"})
    assert unknown["issue_date"] is None and unknown["birth_date"] is not None


@pytest.mark.parametrize("doc_type", sorted(VALUES))
def test_generator_writes_valid_values_for_every_typed_field(doc_type: str) -> None:
    types = DOC_TYPE_FIELDS[doc_type]
    for seed in range(300):
        values = VALUES[doc_type](seed)
        assert set(types) <= set(values), f"{doc_type} lacks typed fields"
        verdicts = check_document(types, values)
        bad = {name: (values[name], why) for name, why in verdicts.items() if why}
        assert not bad, f"{doc_type} seed {seed}: {bad}"


def _write_run(folder: Path, refs: list[dict], answers: dict[tuple[str, str], str]) -> Path:
    folder.mkdir(parents=True)
    with (folder / "references.jsonl").open("w", encoding="utf-8") as handle:
        for ref in refs:
            handle.write(json.dumps(ref, ensure_ascii=False) + "\n")
    with (folder / "answers.jsonl").open("w", encoding="utf-8") as handle:
        for (doc_id, name), text in answers.items():
            line = {"id": f"{doc_id}:{name}", "doc_id": doc_id, "field": name, "answer": text}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    (folder / "run.json").write_text(json.dumps({"mode": "field"}), encoding="utf-8")
    return folder


def test_metrics_classify_wrong_answers_and_report_rates(tmp_path: Path) -> None:
    refs = []
    answers: dict[tuple[str, str], str] = {}
    for i in range(4):
        doc = f"p{i}"
        fields = {
            "surname": "Иванов",
            "series_number": "4505 679944",
            "birth_date": "01.03.1990",
            "issue_date": "05.04.2010",
            "client_inn": "7707083893",
        }
        refs.append(
            {
                "doc_id": doc,
                "doc_type": "passport",
                "fields": fields,
                "field_types": {"client_inn": "inn"},
                "tags": [],
            }
        )
        answers.update({(doc, name): value for name, value in fields.items()})
    answers[("p0", "series_number")] = "4505679945"  # valid but wrong: passes every check
    answers[("p1", "series_number")] = "4505 67994"  # invalid: 9 digits
    answers[("p2", "issue_date")] = "05.04.2000"  # invalid: issued at 10
    answers[("p3", "client_inn")] = "7707 083 893"  # digits: spacing is no error
    answers[("p3", "surname")] = "Петров"  # untyped: neither
    run = _write_run(tmp_path / "run", refs, answers)

    result = score_run(run, n_boot=200)

    by_sample = pd.read_parquet(run / "metrics" / "by_sample.parquet").set_index("sample_id")
    assert by_sample.loc["p0:series_number", "validity"] == "valid_but_wrong"
    assert by_sample.loc["p1:series_number", "validity"] == "invalid"
    assert by_sample.loc["p2:issue_date", "invalid_why"] == "issued before the age of 14"
    assert by_sample.loc["p3:client_inn", "validity"] == "correct"
    assert by_sample.loc["p3:client_inn", "exact"] == 1.0
    assert pd.isna(by_sample.loc["p3:surname", "validity"])
    assert pd.isna(by_sample.loc["p3:surname", "valid_but_wrong"])
    typed = 4 * 4
    assert result["overall"]["valid_but_wrong"] == pytest.approx(1 / typed)
    assert result["overall"]["invalid_rate"] == pytest.approx(2 / typed)
    assert result["aggregates"]["valid_but_wrong"]["higher_is_better"] is False
    assert result["invalid_references"] == 0
    by_field = pd.read_parquet(run / "metrics" / "by_field.parquet")
    row = by_field[(by_field.field == "series_number") & (by_field.metric == "valid_but_wrong")]
    assert row["value"].item() == pytest.approx(0.25) and row["n"].item() == 4
    assert row["ci_low"].item() <= 0.25 <= row["ci_high"].item()
    assert "surname" not in set(by_field[by_field.metric == "valid_but_wrong"].field)
    by_doc_type = pd.read_parquet(run / "metrics" / "by_doc_type.parquet")
    assert "valid_but_wrong" in set(by_doc_type.metric)


def test_gate_compare_and_report_read_the_validity_metrics(tmp_path: Path) -> None:
    from vlmhb.gate.compare import compare_runs
    from vlmhb.gate.thresholds import parse_threshold, read_measure
    from vlmhb.report import build_report
    from vlmhb.run.metric_directions import higher_is_better, read_directions

    ref = {
        "doc_id": "s0",
        "doc_type": "snils",
        "fields": {"snils": "112-233-445 95", "sex": "муж."},
        "tags": [],
    }
    refs = [{**ref, "doc_id": f"s{i}"} for i in range(5)]
    good = {(r["doc_id"], n): v for r in refs for n, v in r["fields"].items()}
    # B answers one SNILS with another number that has a valid checksum
    bad = {**good, ("s0", "snils"): "001-001-997 00"}
    run_a = _write_run(tmp_path / "a", refs, good)
    run_b = _write_run(tmp_path / "b", refs, bad)
    for run in (run_a, run_b):
        score_run(run, n_boot=200)

    gate = parse_threshold("valid_but_wrong=0.01")
    higher = higher_is_better("valid_but_wrong", read_directions(run_b))
    assert higher is False and gate.comparison(higher) == "<="  # a bare '=': 'at most' here
    measured_b = read_measure(run_b, "valid_but_wrong")
    assert measured_b is not None and measured_b.value == pytest.approx(0.1)
    assert not gate.passes(measured_b.value, higher)
    measured_a = read_measure(run_a, "valid_but_wrong", doc_type="snils")
    assert measured_a is not None and gate.passes(measured_a.value, higher)

    comparison = compare_runs(run_a, run_b, metrics=["exact", "valid_but_wrong"], n_boot=200)
    deltas = {(d.field, d.metric): d for d in comparison.deltas}
    assert deltas[("snils", "valid_but_wrong")].delta == pytest.approx(0.2)
    assert ("sex", "valid_but_wrong") in deltas

    built = build_report([run_a, run_b], tmp_path / "report.html")
    html = built.html.read_text("utf-8")
    assert 'id="validity"' in html and "Field validity" in html
    assert "0.100" in html  # run B's valid-but-wrong rate
    summary = built.markdown.read_text("utf-8")
    assert "## Field validity" in summary and "| snils |" in summary


def test_dataset_field_types_are_checked_and_reach_the_references(
    tmp_path: Path, write_plan
) -> None:
    from conftest import write_png

    from vlmhb import api
    from vlmhb.data import check_dataset

    root = tmp_path / "ds"
    write_png(root / "images" / "a.png")
    line = {"id": "a", "image": "images/a.png", "doc_type": "contract", "fields": {"ИНН": "1"}}
    typed = {**line, "field_types": {"ИНН": "inn"}}
    bad = {**line, "id": "b", "field_types": {"ИНН": "innn"}}
    (root / "annotations.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in (typed, bad)) + "\n", "utf-8"
    )
    [problem] = check_dataset(str(root))
    assert (problem.row, problem.column) == (2, "field_types.ИНН")
    assert "unknown field type 'innn'" in problem.message

    (root / "annotations.jsonl").write_text(json.dumps(typed, ensure_ascii=False) + "\n")
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "e", "stages": "infer"}])
    [prepared] = api.prepare_plan(plan, runs_dir=tmp_path / "runs")
    from vlmhb.run.prepare import write_references

    prepared.run_dir.mkdir(parents=True)
    reference = json.loads(write_references(prepared).read_text("utf-8"))
    assert reference["field_types"] == {"ИНН": "inn"} and reference["generated_by"] is None
