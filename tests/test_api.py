"""vlmhb.api, the Python twin of the CLI: run_plan, prepare_plan, write_report, lazy exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_dataset

import vlmhb
from vlmhb import api
from vlmhb.data.documents import Dataset, Document
from vlmhb.errors import VlmhbError
from vlmhb.plan.prompts import PromptCollection
from vlmhb.run.execute import RunOutcome
from vlmhb.run.files import METRICS_DIR, METRICS_JSON, RUN_JSON


def echo_row(**extra: object) -> dict[str, object]:
    return {"dataset": "ds", "backend": "echo", "model": "echo-m", **extra}


def test_the_package_root_exports_the_api_lazily() -> None:
    assert vlmhb.run_plan is api.run_plan
    from vlmhb.plan.plan_csv import load_plan

    assert vlmhb.load_plan is load_plan
    assert issubclass(vlmhb.VlmhbError, Exception)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = vlmhb.nothing  # type: ignore[attr-defined]


def test_prepare_plan_resolves_rows_into_typed_runs(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=3, fields=("surname", "name"))
    plan = write_plan([echo_row(), echo_row(mode="document")])
    first, second = api.prepare_plan(plan, runs_dir=tmp_path / "runs")
    assert isinstance(first.dataset, Dataset) and isinstance(first.prompts, PromptCollection)
    assert all(isinstance(doc, Document) for doc in first.documents)
    assert (first.n_samples, second.n_samples) == (6, 3)  # 3 docs x 2 fields; 3 documents
    assert first.run_id != second.run_id and first.run_dir.parent == tmp_path / "runs"
    assert first.env_name == "echo" and first.isolation == "local"
    assert not (tmp_path / "runs").exists()  # preparing writes nothing


def test_dry_run_prepares_every_row_and_writes_nothing(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([echo_row(), echo_row(model="other")])
    result = api.run_plan(plan, runs_dir=tmp_path / "runs", dry_run=True, progress=False)
    assert [o.status for o in result.runs] == ["dry-run", "dry-run"]
    assert result.failed == [] and result.report is None
    assert not (tmp_path / "runs").exists()


def test_run_plan_runs_every_row_reports_and_calls_back_in_order(
    tmp_path: Path, write_plan
) -> None:
    make_dataset(tmp_path / "ds", n_docs=3, fields=("surname",))
    plan = write_plan(
        [
            echo_row(name="good", stages="infer,eval,report", load={"answer_field": True}),
            echo_row(name="broken", stages="infer,eval,report", load={"fail_load": "no weights"}),
        ]
    )
    seen: list[RunOutcome] = []
    result = api.run_plan(
        plan, runs_dir=tmp_path / "runs", isolation="local", progress=False, on_outcome=seen.append
    )
    good, broken = result.runs
    assert seen == result.runs
    assert (good.status, broken.status) == ("done", "failed")
    assert result.failed == [broken] and "no weights" in str(broken.error)
    assert good.counts["answered"] == 3 and good.overall["exact_match"] == 0.0  # "surname"
    assert (good.prepared.run_dir / METRICS_DIR / METRICS_JSON).is_file()
    assert result.report == tmp_path / "runs" / "report.html" and result.report.is_file()
    assert (tmp_path / "runs" / "summary.md").is_file()
    record = json.loads((broken.prepared.run_dir / RUN_JSON).read_text("utf-8"))
    assert record["status"] == "failed"


def test_parallel_cpu_runs_come_back_in_plan_order(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([echo_row(model=f"m{i}", stages="infer") for i in range(3)])
    result = api.run_plan(plan, runs_dir=tmp_path / "runs", gpus="", jobs=2, progress=False)
    assert [o.prepared.run.model for o in result.runs] == ["m0", "m1", "m2"]
    assert [o.status for o in result.runs] == ["done"] * 3


def test_unknown_executor_is_an_error_before_anything_runs(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan([echo_row()])
    with pytest.raises(VlmhbError, match="unknown executor 'cloud'"):
        api.run_plan(plan, runs_dir=tmp_path / "runs", executor="cloud", progress=False)
    assert not (tmp_path / "runs").exists()


def test_write_report_writes_the_page_and_summary_beside_it(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2, fields=("surname",))
    plan = write_plan([echo_row(stages="infer,eval")])
    (outcome,) = api.run_plan(plan, runs_dir=tmp_path / "runs", progress=False).runs
    html = api.write_report([outcome.prepared.run_dir], tmp_path / "out" / "page.html")
    assert html == tmp_path / "out" / "page.html" and html.is_file()
    summary = (tmp_path / "out" / "summary.md").read_text("utf-8")
    assert "| echo-m | echo | default | field | done | 2 |" in summary
