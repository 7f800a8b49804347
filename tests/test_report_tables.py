"""The report's tables on fixture run folders (tests/fixtures_runs.py): leaderboard, Pareto
fronts, metric matrices, gaps, drill-down selection and the files ``build_report`` writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from vlmhb.errors import RunDirError
from vlmhb.form_labels import form_fields
from vlmhb.report import build_report
from vlmhb.report.drilldown import build_drilldown, char_diff, select_documents
from vlmhb.report.run_data import find_runs, load_runs, read_samples
from vlmhb.report.tables import (
    leaderboard,
    metric_matrix,
    pareto_front,
    report_gaps,
    resource_series,
)
from vlmhb.run.files import (
    ANSWERS,
    BY_DOC_TYPE,
    BY_FIELD,
    BY_SAMPLE,
    BY_TAG,
    METRICS_DIR,
    METRICS_JSON,
    OVERALL,
    REFERENCES,
    RESOURCES,
    RUN_JSON,
    metrics_table,
)

try:
    from tests.fixtures_runs import RunSpec, make_runs
except ImportError:  # pytest's rootdir-relative import mode
    from fixtures_runs import RunSpec, make_runs  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("campaign")
    make_runs(root, n_docs=12)
    return root


@pytest.fixture(scope="module")
def runs(campaign: Path) -> list:
    return load_runs([campaign / "runs"])


def by_model(board: pd.DataFrame, model: str, backend: str) -> pd.Series:
    rows = board[(board["model"] == model) & (board["backend"] == backend)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_find_runs_accepts_run_and_parent_folders(campaign: Path, tmp_path: Path) -> None:
    all_runs = find_runs([campaign])
    assert len(all_runs) == 6
    one = all_runs[0]
    assert find_runs([one, campaign / "runs"]) == all_runs  # de-duplicated, order kept
    with pytest.raises(RunDirError, match="no run folder"):
        find_runs([tmp_path])
    with pytest.raises(RunDirError, match="no such run folder"):
        find_runs([tmp_path / "missing"])


def test_leaderboard_takes_overall_metrics_with_cis(runs: list) -> None:
    board = leaderboard(runs)
    assert len(board) == 6
    for run in runs:
        overall = run.tables.get("overall")
        row = board[board["run_id"] == run.run_id].iloc[0]
        if overall is None:
            assert math.isnan(row["exact_match"]) and math.isnan(row["cer"])
            continue
        em = overall[overall["metric"] == "exact_match"].iloc[0]
        cer = overall[overall["metric"] == "cer_micro"].iloc[0]
        assert row["exact_match"] == pytest.approx(em["value"])
        assert (row["exact_match_lo"], row["exact_match_hi"]) == pytest.approx(
            (em["ci_low"], em["ci_high"])
        )
        assert row["cer"] == pytest.approx(cer["value"])
        # The overall exact match is the mean of the per-sample column.
        samples = pd.read_parquet(run.path / "metrics" / "by_sample.parquet")
        assert row["exact_match"] == pytest.approx(samples["exact"].mean())
    ranked = board["exact_match"].dropna().tolist()
    assert ranked == sorted(ranked, reverse=True)
    assert board.iloc[-1]["backend"] == "sglang"  # the run without metrics comes last


def test_leaderboard_json_validity_only_in_document_mode(runs: list) -> None:
    board = leaderboard(runs)
    doc = by_model(board, "Qwen/Qwen2-VL-2B-Instruct", "vllm")
    assert doc["mode"] == "document"  # read from the nested plan_row
    run = next(r for r in runs if r.run_id == doc["run_id"])
    fail = run.tables["overall"].set_index("metric").loc["json_parse_failure_rate"]
    assert doc["json_valid"] == pytest.approx(1 - fail["value"])
    assert doc["json_valid_lo"] == pytest.approx(1 - fail["ci_high"])
    assert board.loc[board["mode"] == "field", "json_valid"].isna().all()


def test_leaderboard_resources_from_summary_and_fallbacks(campaign: Path, runs: list) -> None:
    board = leaderboard(runs)
    qwen7 = by_model(board, "Qwen/Qwen2-VL-7B-Instruct", "vllm")
    record = json.loads((campaign / "runs" / qwen7["run_id"] / "run.json").read_text())
    assert qwen7["samples_per_s"] == pytest.approx(record["resources"]["samples_per_s"])
    assert qwen7["vram_peak_mb"] == pytest.approx(record["resources"]["vram_peak_mb"])
    assert qwen7["energy_per_doc_j"] == pytest.approx(record["resources"]["energy_per_doc_j"])
    for column, key in (("start_load_s", "worker_start_s"), ("generation_s", "generation_s"),
                        ("teardown_s", "teardown_s")):  # fmt: skip
        assert qwen7[column] == pytest.approx(record["timings"][key]), column
    cpu = by_model(board, "tesseract-rus", "tesseract")
    assert math.isnan(cpu["vram_peak_mb"]) and math.isnan(cpu["energy_per_doc_j"])
    assert cpu["latency_p50_s"] > 0


def test_leaderboard_recomputes_missing_summary(tmp_path: Path) -> None:
    [run_dir] = make_runs(tmp_path, [RunSpec("m", "hf", gpus=2, vram_mb=9000)], n_docs=6)
    record = json.loads((run_dir / "run.json").read_text())
    del record["resources"]
    (run_dir / "run.json").write_text(json.dumps(record))
    row = leaderboard(load_runs([run_dir])).iloc[0]
    answers = pd.read_json(run_dir / "answers.jsonl", lines=True)
    assert row["latency_p50_s"] == pytest.approx(answers["latency_s"].quantile(0.5))
    assert row["latency_p95_s"] == pytest.approx(answers["latency_s"].quantile(0.95))
    wall = record["finished_at"] - record["started_at"]
    assert row["samples_per_s"] == pytest.approx(len(answers) / wall)
    res = pd.read_parquet(run_dir / "resources.parquet")
    peak = (res["gpu0_mem_used_mb"] + res["gpu1_mem_used_mb"]).max()
    assert row["vram_peak_mb"] == pytest.approx(peak)
    assert row["energy_per_doc_j"] > 0


def test_pareto_front() -> None:
    speed = [1.0, 2.0, 3.0, 2.0, math.nan, 0.5]
    acc = [0.9, 0.8, 0.5, 0.7, 1.0, 0.9]
    assert pareto_front(speed, acc) == [True, True, True, False, False, False]
    vram = [10.0, 20.0, 5.0, 30.0]  # lower is better
    assert pareto_front(vram, [0.8, 0.9, 0.6, 0.85], maximize_x=False) == [True, True, True, False]
    assert pareto_front([1.0, 1.0], [0.5, 0.5]) == [True, True]  # ties dominate neither


def test_gaps_name_each_missing_stage(runs: list) -> None:
    gaps = report_gaps(runs)
    text = "\n".join(gaps)
    assert any("sglang" in g and "no metrics" in g for g in gaps)
    assert any("sglang" in g and "'failed'" in g for g in gaps)
    assert any("llava-tiny" in g and "no resources.parquet" in g for g in gaps)
    assert any("tesseract" in g and "CPU only" in g for g in gaps)
    assert "Qwen2-VL-7B" not in text  # a complete run states no gap


def test_metric_matrix_fields_by_run(runs: list) -> None:
    matrix = metric_matrix(runs, "by_field", "field")
    with_metrics = [r for r in runs if r.has_metrics]
    assert list(matrix.columns) == [r.label for r in with_metrics]
    assert {"surname", "seller_inn", "snils"} <= set(matrix.index)
    run = with_metrics[0]
    table = run.tables["by_field"]
    want = table[(table["field"] == "surname") & (table["metric"] == "exact_match")]["value"]
    assert matrix.loc["surname", run.label] == pytest.approx(want.iloc[0])
    assert matrix.attrs["n"].loc["surname", run.label] > 0
    assert metric_matrix(runs, "by_nothing", "field").empty


def test_resource_series_downsamples_and_sums_gpus(runs: list) -> None:
    qwen7 = next(r for r in runs if "7B" in r.model)
    full = resource_series(qwen7, max_points=10_000)
    small = resource_series(qwen7, max_points=3)
    assert full is not None and small is not None
    assert len(small) <= 3 and {"vram_mb", "power_w", "rss_mb"} <= set(small.columns)
    raw = qwen7.resources
    assert full["vram_mb"].max() == pytest.approx(
        (raw["gpu0_mem_used_mb"] + raw["gpu1_mem_used_mb"]).max()
    )
    assert small["vram_mb"].max() == pytest.approx(full["vram_mb"].max())
    assert resource_series(next(r for r in runs if r.model == "llava-tiny")) is None


def test_char_diff() -> None:
    assert char_diff("Иванов", "Иванов") is None
    assert char_diff("Иванов", "Ивaнов") == ("=Ив", "-а", "+a", "=нов")
    assert char_diff("Пётр", "") == ("-Пётр",)
    assert char_diff("", "x") == ("+x",)


def test_drilldown_errors_first_capped_and_images_deduplicated(tmp_path: Path) -> None:
    make_runs(tmp_path, n_docs=9, n_images=3)
    runs = load_runs([tmp_path / "runs"])
    chosen, total = select_documents(runs, max_docs=4)
    assert total == 9 and len(chosen) == 4
    drill = build_drilldown(runs, max_docs=4)
    wrong = [d["errors"] for d in drill.data["docs"]]
    assert wrong == sorted(wrong, reverse=True)
    assert drill.note and "4 of 9" in drill.note
    full = build_drilldown(runs, max_docs=100)
    assert full.shown == 9
    # Nine documents share three image files: three thumbnails, referenced by id.
    assert len(full.data["images"]) == 3
    assert all(v.startswith("data:image/jpeg;base64,") for v in full.data["images"].values())
    assert {d["img"] for d in full.data["docs"]} == set(full.data["images"])
    # Each run contributes one cell per field; a wrong cell carries a diff or an error.
    doc = full.data["docs"][0]
    cells = [c for f in doc["fields"] for c in f["cells"]]
    assert {c[0] for c in cells} == set(range(len(runs)))
    assert all(len(c) > 2 for c in cells if c[1] == 0)
    assert build_drilldown(runs, max_docs=100, max_cells=10).shown == 1


def test_samples_rebuilt_from_answers_when_metrics_missing(runs: list) -> None:
    run = next(r for r in runs if not r.has_metrics)
    samples = read_samples(run)
    assert samples is not None and len(samples) > 0
    ok = samples[samples["error"].isna()]
    assert (ok["exact"] == (ok["answer"].str.strip() == ok["reference"].str.strip())).all()


def test_build_report_writes_page_and_summary(campaign: Path, tmp_path: Path) -> None:
    broken = campaign / "runs" / "zz-broken"
    broken.mkdir(exist_ok=True)
    (broken / "run.json").write_text("{not json", "utf-8")
    try:
        result = build_report([campaign / "runs"], tmp_path / "r" / "report.html")
    finally:
        (broken / "run.json").unlink()
        broken.rmdir()
    assert result.n_runs == 7
    assert result.markdown == tmp_path / "r" / "summary.md"
    md = result.markdown.read_text("utf-8")
    assert md.count("\n| ") == 9  # header, rule, 7 rows
    assert "Qwen/Qwen2-VL-7B-Instruct" in md and "## Gaps" in md
    assert any("run.json unreadable" in g for g in result.gaps)
    html = result.html.read_text("utf-8")
    assert html.count('class="lb-row"') == 7
    first = json.loads((campaign / "runs").glob(f"*/{REFERENCES}").__next__().read_text("utf-8")
                       .splitlines()[0])  # fmt: skip
    assert first["fields"]["surname"] in html  # the drill-down's Russian stays readable


def test_runs_that_would_share_a_label_are_told_apart(tmp_path: Path) -> None:
    """Two runs of one model (e.g. two dtypes) must not merge into one heatmap column."""
    for run_id, name in (("tiny-hf-aaaaaa111111", ""), ("tiny-hf-bbbbbb222222", "")):
        folder = tmp_path / run_id
        folder.mkdir()
        record = {"run_id": run_id, "model": "tiny", "backend": "hf", "plan_row": {"name": name}}
        (folder / "run.json").write_text(json.dumps(record), "utf-8")
    named = tmp_path / "named"
    named.mkdir()
    (named / "run.json").write_text(
        json.dumps(
            {"run_id": "x", "model": "tiny", "backend": "hf", "plan_row": {"name": "tiny bf16"}}
        ),
        "utf-8",
    )
    labels = {run.label for run in load_runs([tmp_path])}
    assert labels == {"tiny · hf · default (111111)", "tiny · hf · default (222222)", "tiny bf16"}


def test_fixture_run_folders_have_the_shape_of_real_ones(tmp_path: Path) -> None:
    """The hand-made folders name files, columns, metrics and keys as a real echo run does."""
    from conftest import make_dataset as make_native

    from vlmhb import api

    make_native(tmp_path / "ds", n_docs=3)
    plan = tmp_path / "plan.csv"
    plan.write_text('dataset,backend,model,stages\nds,echo,m,"infer,eval"\n', "utf-8")
    (outcome,) = api.run_plan(plan, runs_dir=tmp_path / "runs", isolation="local").runs
    real = outcome.prepared.run_dir
    [fake] = make_runs(tmp_path / "fake", [RunSpec("m", "echo", gpus=0)], n_docs=3)

    def files(run_dir: Path) -> set[str]:
        return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}

    assert files(fake) <= files(real)
    assert list(pd.read_parquet(fake / metrics_table(BY_SAMPLE)).columns) == list(
        pd.read_parquet(real / metrics_table(BY_SAMPLE)).columns
    )
    for name in (OVERALL, BY_FIELD, BY_DOC_TYPE, BY_TAG):
        fake_table, real_table = (pd.read_parquet(d / metrics_table(name)) for d in (fake, real))
        assert list(fake_table.columns) == list(real_table.columns), name
    fake_metrics = set(pd.read_parquet(fake / metrics_table(OVERALL))["metric"])
    assert fake_metrics == set(pd.read_parquet(real / metrics_table(OVERALL))["metric"])
    fake_json, real_json = (
        json.loads((d / METRICS_DIR / METRICS_JSON).read_text("utf-8")) for d in (fake, real)
    )
    assert set(fake_json) <= set(real_json)
    assert fake_json["normalization"] == real_json["normalization"]
    assert {k: real_json["higher_is_better"][k] for k in fake_json["higher_is_better"]} == (
        fake_json["higher_is_better"]
    )
    fake_record, real_record = (json.loads((d / RUN_JSON).read_text("utf-8")) for d in (fake, real))
    assert set(fake_record) <= set(real_record)
    assert set(fake_record["counts"]) <= set(real_record["counts"])
    assert set(fake_record["resources"]) <= set(real_record["resources"])
    assert fake_record["resources"]["gpu_status"] == real_record["resources"]["gpu_status"]
    assert list(pd.read_parquet(fake / RESOURCES).columns) == list(
        pd.read_parquet(real / RESOURCES).columns
    )
    fake_answer, real_answer = (
        json.loads((d / ANSWERS).read_text("utf-8").splitlines()[0]) for d in (fake, real)
    )
    assert list(fake_answer) == list(real_answer)
    fake_ref, real_ref = (
        json.loads((d / REFERENCES).read_text("utf-8").splitlines()[0]) for d in (fake, real)
    )
    assert list(fake_ref) == list(real_ref)
    keys = {
        spec.key for doc_type in ("passport", "snils", "invoice") for spec in form_fields(doc_type)
    }
    fake_fields = set(pd.read_parquet(fake / metrics_table(BY_SAMPLE))["field"])
    assert fake_fields <= keys  # the field keys real datasets and prompts use
