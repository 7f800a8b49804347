"""Run a prompt search: every candidate's run, the scores, the winners, the merged collection.

``search_prompts`` reads top to bottom in call order: prepare one run per candidate (a run
already done is resumed, and the answer cache answers requests asked before), infer and score
each, read the per-sample scores (``metrics/by_sample.parquet``), split the documents, select
the winners, and write the search folder: ``prompt_search.json`` (what the report reads),
``merged.json`` (native) and, in field mode, ``merged.csv`` (the v0.1 layout).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vlmhb.errors import VlmhbError
from vlmhb.prompt_search.candidates import SearchSpec
from vlmhb.prompt_search.export import merged_collection, write_v01_csv
from vlmhb.prompt_search.select import ALL_FIELDS, Selection, select_winners
from vlmhb.prompt_search.split import DocumentSplit, split_documents
from vlmhb.run.execute import RunOutcome, execute_run
from vlmhb.run.folder import METRICS_DIR, write_json_atomic
from vlmhb.run.prepare import PreparedRun, prepare_run

SEARCH_JSON = "prompt_search.json"
MERGED_JSON = "merged.json"
MERGED_CSV = "merged.csv"
SEARCH_VERSION = 1


class SearchError(VlmhbError):
    """A prompt search cannot go on (a candidate's run failed, an unknown metric...)."""


@dataclass
class SearchOutcome:
    """What a search did and wrote."""

    folder: Path
    selections: list[Selection]
    runs: dict[str, RunOutcome]
    split: DocumentSplit
    merged_json: Path
    merged_csv: Path | None
    report: Path | None = None


def _scores(run_dir: Path, metric: str) -> Any:
    """One row per scored sample: doc_id, doc_type, field, the metric (and cer when scored)."""
    import pandas as pd

    path = run_dir / METRICS_DIR / "by_sample.parquet"
    if not path.is_file():
        raise SearchError(f"{run_dir}: no {METRICS_DIR}/by_sample.parquet (the eval stage failed?)")
    frame = pd.read_parquet(path)
    if metric not in frame.columns:
        known = ", ".join(c for c in frame.columns if frame[c].dtype.kind == "f")
        raise SearchError(f"unknown metric {metric!r}; per-sample metrics: {known}")
    if "missing" in frame.columns:  # reference fields the run did not ask (plan filters)
        frame = frame[~frame["missing"].astype(bool)]
    columns = ["doc_id", "doc_type", "field", metric] + (
        ["cer"] if "cer" in frame.columns and metric != "cer" else []
    )
    frame = frame[columns].copy()
    frame["field"] = frame["field"].fillna("").astype(str)
    frame["doc_id"] = frame["doc_id"].astype(str)
    return frame.drop_duplicates(["doc_id", "field"])


def _search_id(spec: SearchSpec, prepared: dict[str, PreparedRun]) -> str:
    identity = {
        "runs": {name: p.run_id for name, p in prepared.items()},
        "metric": spec.metric,
        "confirm": spec.confirm,
        "seed": spec.seed,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def search_prompts(
    spec: SearchSpec,
    *,
    runs_dir: Path = Path("runs"),
    out_dir: Path | None = None,
    report: bool = True,
    progress: bool | None = False,
    on_run: Callable[[str, RunOutcome], None] | None = None,
) -> SearchOutcome:
    """Run and score every candidate, select winners, write the search folder."""
    split_documents({}, spec.confirm, spec.seed)  # refuse a bad fraction before any work
    prepared = {c.name: prepare_run(run, runs_dir) for c, run in spec.runs}
    outcomes: dict[str, RunOutcome] = {}
    for name, item in prepared.items():
        outcome = execute_run(item, progress=progress)
        if on_run:
            on_run(name, outcome)
        if not outcome.ok:
            raise SearchError(f"candidate {name!r}: run {item.run_id} failed: {outcome.error}")
        outcomes[name] = outcome
    frames = {name: _scores(item.run_dir, spec.metric) for name, item in prepared.items()}
    doc_types: dict[str, str] = {}
    for frame in frames.values():
        doc_types.update(zip(frame["doc_id"], frame["doc_type"], strict=True))
    split = split_documents(doc_types, spec.confirm, spec.seed)
    order = [c.name for c, _ in spec.runs]
    default = spec.default.name
    selections = select_winners(
        {n: f.drop(columns=["cer"], errors="ignore") for n, f in frames.items()},
        order,
        default,
        spec.metric,
        split.search,
        split.confirm,
        n_boot=spec.n_boot,
        seed=spec.seed,
    )
    folder = out_dir or runs_dir / f"prompt-search-{_search_id(spec, prepared)}"
    folder.mkdir(parents=True, exist_ok=True)
    merged_json, merged_csv = _write_merged(spec, prepared, selections, frames, split, folder)
    write_json_atomic(folder / SEARCH_JSON, _record(spec, prepared, selections, split))
    result = SearchOutcome(folder, selections, outcomes, split, merged_json, merged_csv)
    if report:
        from vlmhb.report import build_report

        run_dirs = [item.run_dir for item in prepared.values()]
        result.report = build_report([*run_dirs, folder], folder / "report.html").html
    return result


def _write_merged(
    spec: SearchSpec,
    prepared: dict[str, PreparedRun],
    selections: list[Selection],
    frames: dict[str, Any],
    split: DocumentSplit,
    folder: Path,
) -> tuple[Path, Path | None]:
    from vlmhb.plan.prompts import CollectionModel, load_prompts

    candidates = {c.name: c for c, _ in spec.runs}
    merged = merged_collection(
        f"{spec.runs[0][1].model}-merged",
        spec.mode,
        selections,
        candidates,
        {name: item.prompts for name, item in prepared.items()},
        load_prompts(None),
        {name: item.run_id for name, item in prepared.items()},
        spec.metric,
    )
    CollectionModel.model_validate(merged)  # what is written reads back
    merged_json = folder / MERGED_JSON
    write_json_atomic(merged_json, merged)
    if spec.mode != "field":
        return merged_json, None
    cer: dict[tuple[str, str], float] = {}
    held = split.confirm or split.search
    for s in selections:
        frame = frames[s.winner]
        column = "cer" if "cer" in frame.columns else None
        if column is None or s.field == ALL_FIELDS:
            continue
        part = frame[
            (frame["doc_type"] == s.doc_type)
            & (frame["field"] == s.field)
            & frame["doc_id"].isin(held)
        ][column].dropna()
        if not part.empty:
            cer[(s.doc_type, s.field)] = float(part.mean())
    return merged_json, write_v01_csv(folder / MERGED_CSV, merged, cer)


def _record(
    spec: SearchSpec,
    prepared: dict[str, PreparedRun],
    selections: list[Selection],
    split: DocumentSplit,
) -> dict[str, Any]:
    """``prompt_search.json``: everything the report needs, read back without the runs."""
    first = spec.runs[0][1]
    return {
        "version": SEARCH_VERSION,
        "source": spec.source,
        "model": first.model,
        "backend": first.backend,
        "dataset": first.dataset,
        "mode": spec.mode,
        "metric": spec.metric,
        "confirm": spec.confirm,
        "seed": spec.seed,
        "n_boot": spec.n_boot,
        "default": spec.default.name,
        "n_search_docs": len(split.search),
        "n_confirm_docs": len(split.confirm),
        "candidates": [
            {
                **asdict(c),
                "run_id": prepared[c.name].run_id,
                "run_dir": str(prepared[c.name].run_dir),
            }
            for c, _ in spec.runs
        ],
        "selections": [asdict(s) for s in selections],
    }
