"""Score a run folder: read, normalize, compute metrics, aggregate, write ``metrics/``.

:func:`score_run` is the whole metrics stage; ``python -m vlmhb.metrics`` only parses
arguments and calls it. Outputs (see ``docs/architecture.md``): ``by_sample``, ``by_field``,
``by_doc_type``, ``by_tag``, ``overall`` as Parquet and CSV, and ``metrics.json``.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlmhb.metrics._aggregate import Aggregate, aggregate_tables, den, num
from vlmhb.metrics._errors import MetricsInputError
from vlmhb.metrics._fields import field_kind
from vlmhb.metrics._normalize import Normalization, is_mixed_script, normalize_text
from vlmhb.metrics._registry import MetricSpec, directions, resolve_metrics
from vlmhb.metrics._robustness import robustness_ladders, with_robustness_rows
from vlmhb.metrics._runfolder import read_run
from vlmhb.metrics._samples import TEXT_FIELD, Samples, build_samples
from vlmhb.metrics._text import PairBatch, cer, exact_match
from vlmhb.metrics._validity import classify, sample_types
from vlmhb.run.files import (
    BY_DOC_TYPE,
    BY_FIELD,
    BY_SAMPLE,
    BY_TAG,
    METRICS_DIR,
    METRICS_JSON,
    OVERALL,
    REFERENCES,
)
from vlmhb.validity import NORMALIZER_KIND

VERSION = 1
TABLES = {BY_FIELD: "field", BY_DOC_TYPE: "doc_type", BY_TAG: "tag", OVERALL: None}
DOCUMENT_AGGREGATES = (
    "field_precision",
    "field_recall",
    "field_f1",
    "json_parse_failure_rate",
    "missing_field_rate",
    "invented_field_rate",
)
# Per-sample columns of by_sample besides the metric functions' own.
RAW_COLUMNS = ("exact_raw", "cer_raw")


def _kind(name: str) -> str:
    return "page" if name == TEXT_FIELD else field_kind(name)


def _normalize_all(texts: list[str], kinds: list[str], settings: Normalization) -> list[str]:
    return [normalize_text(text, kind, settings) for text, kind in zip(texts, kinds, strict=True)]


def _units_for_metrics(
    frame: pd.DataFrame, specs: list[MetricSpec], batch: PairBatch
) -> tuple[dict[str, np.ndarray], list[Aggregate], dict[str, Any]]:
    """Per-sample columns, the aggregates they feed, and the num/den unit columns."""
    columns: dict[str, np.ndarray] = {}
    units: dict[str, Any] = {}
    aggregates: list[Aggregate] = []
    ones = np.ones(len(frame))
    for spec in specs:
        values = spec.function(batch)
        columns[spec.column] = values.per_sample
        if values.numerator is not None and values.denominator is not None and spec.ratio:
            units[num(spec.name)], units[den(spec.name)] = values.numerator, values.denominator
            aggregates.append(Aggregate(spec.name))
        elif values.numerator is not None and values.denominator is not None:
            micro, macro = spec.aggregate_names(micro=True)
            units[num(micro)], units[den(micro)] = values.numerator, values.denominator
            units[num(macro)], units[den(macro)] = values.per_sample, ones
            aggregates += [Aggregate(micro), Aggregate(macro)]
        else:
            units[num(spec.name)], units[den(spec.name)] = values.per_sample, ones
            aggregates.append(Aggregate(spec.name))
    return columns, aggregates, units


def _document_units(frame: pd.DataFrame, samples: Samples) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Field P/R/F1, parse-failure, missing- and invented-field contributions.

    Sample rows carry the per-field parts; one extra row per document (``field`` empty)
    carries what belongs to no reference field: parse failure and invented keys.
    """
    present = frame["field_present"].to_numpy(float)
    parsed = frame["json_ok"].to_numpy(float)
    tp = present * frame["exact"].to_numpy(float)
    ref_pairs = np.ones(len(frame))
    sample_units = {
        "field_precision": (tp, present),
        "field_recall": (tp, ref_pairs),
        "field_f1": (2 * tp, present + ref_pairs),
        "json_parse_failure_rate": (np.zeros(len(frame)), np.zeros(len(frame))),
        "missing_field_rate": (parsed * (1 - present), parsed),
        "invented_field_rate": (np.zeros(len(frame)), present),
    }
    docs = list(samples.doc_json_ok)
    invented = np.array([samples.doc_invented[d] for d in docs], float)
    answered = np.array([samples.doc_answered[d] for d in docs], float)
    failed = answered * (1 - np.array([samples.doc_json_ok[d] for d in docs], float))
    zeros = np.zeros(len(docs))
    doc_units = {
        "field_precision": (zeros, invented),
        "field_recall": (zeros, zeros),
        "field_f1": (zeros, invented),
        "json_parse_failure_rate": (failed, answered),
        "missing_field_rate": (zeros, zeros),
        "invented_field_rate": (invented, invented),
    }
    doc_frame = pd.DataFrame(
        {
            "doc_id": docs,
            "doc_type": [samples.doc_meta[d][0] for d in docs],
            "field": None,
            "tags": [samples.doc_meta[d][1] for d in docs],
        }
    )
    for name in DOCUMENT_AGGREGATES:
        frame_num, frame_den = sample_units[name]
        doc_num, doc_den = doc_units[name]
        frame = frame.assign(**{num(name): frame_num, den(name): frame_den})
        doc_frame[num(name)], doc_frame[den(name)] = doc_num, doc_den
    return frame, doc_frame


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("vlmhb", "rapidfuzz", "numpy", "pandas", "pyarrow", "sacrebleu"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def _write_table(table: pd.DataFrame, folder: Path, name: str) -> None:
    for suffix, write in (("parquet", table.to_parquet), ("csv", table.to_csv)):
        target = folder / f"{name}.{suffix}"
        partial = folder / f".{name}.{suffix}.tmp"
        write(partial, index=False)
        os.replace(partial, target)


def score_run(
    run_dir: Path,
    metrics: list[str] | None = None,
    normalization: Normalization | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Score ``run_dir`` and write ``run_dir/metrics/``; returns the ``metrics.json`` content.

    ``metrics`` names extra metrics on top of the core ones (exact_match, anls, ned, cer,
    wer), case-insensitively; ``None`` takes the ``metrics`` of ``run.json``.
    """
    run_dir = Path(run_dir)
    settings = normalization or Normalization()
    inputs = read_run(run_dir)
    specs = resolve_metrics(metrics if metrics is not None else inputs.plan_metrics)
    samples = build_samples(inputs)
    if not samples.sample_id:
        where = str(run_dir / REFERENCES)
        raise MetricsInputError(f"nothing to score in {inputs.mode} mode", file=where)
    types = sample_types(samples, inputs.references)
    kinds = [
        NORMALIZER_KIND.get(t) or _kind(name) for t, name in zip(types, samples.field, strict=True)
    ]
    answer_norm = _normalize_all(samples.answer, kinds, settings)
    reference_norm = _normalize_all(samples.reference, kinds, settings)
    validity = classify(samples.doc_id, samples.field, types, answer_norm, reference_norm)
    mixed = np.array([is_mixed_script(a) for a in samples.answer], float)
    frame = pd.DataFrame(
        {
            "sample_id": samples.sample_id,
            "doc_id": samples.doc_id,
            "doc_type": samples.doc_type,
            "field": samples.field,
            "tags": [";".join(t) for t in samples.tags],
            "reference": samples.reference,
            "answer": samples.answer,
            "reference_norm": reference_norm,
            "answer_norm": answer_norm,
            "missing": samples.missing,
            "error": samples.error,
        }
    )
    columns, aggregates, units = _units_for_metrics(
        frame, specs, PairBatch(answer_norm, reference_norm, validity.verdicts)
    )
    frame = frame.assign(field_type=types, validity=validity.verdicts, invalid_why=validity.reasons)
    raw = PairBatch(samples.answer, samples.reference)
    raw_cer, raw_exact = cer(raw), exact_match(raw)
    frame = frame.assign(**columns, cer_raw=raw_cer.per_sample, exact_raw=raw_exact.per_sample)
    frame["mixed_script"] = mixed.astype(bool)
    units[num("exact_match_raw")], units[den("exact_match_raw")] = raw_exact.per_sample, 1.0
    units[num("cer_raw_micro")], units[den("cer_raw_micro")] = (
        raw_cer.numerator,
        raw_cer.denominator,
    )
    aggregates += [Aggregate("exact_match_raw"), Aggregate("cer_raw_micro")]
    unit_frame = frame[["doc_id", "doc_type", "field"]].assign(tags=samples.tags, **units)
    unit_frame[num("missing_answer_rate")] = frame["missing"].to_numpy(float)
    unit_frame[den("missing_answer_rate")] = 1.0
    unit_frame[num("mixed_script_answers")], unit_frame[den("mixed_script_answers")] = mixed, 1.0
    aggregates += [Aggregate("missing_answer_rate"), Aggregate("mixed_script_answers", count=True)]
    if inputs.mode == "document":
        frame["json_ok"], frame["field_present"] = samples.json_ok, samples.field_present
        scored, doc_frame = _document_units(frame, samples)
        doc_cols = [c for c in scored.columns if c.endswith((":num", ":den"))]
        unit_frame = pd.concat(
            [unit_frame.assign(**scored[doc_cols]), doc_frame], ignore_index=True
        )
        unit_frame = unit_frame.fillna({c: 0.0 for c in unit_frame.columns if ":" in c})
        aggregates += [Aggregate(name) for name in DOCUMENT_AGGREGATES]

    out = run_dir / METRICS_DIR
    out.mkdir(exist_ok=True)
    _write_table(frame, out, BY_SAMPLE)
    tables = aggregate_tables(unit_frame, aggregates, TABLES, seed=seed, n_boot=n_boot)
    ladders = robustness_ladders(tables["by_tag"])
    if ladders:
        tables["overall"] = with_robustness_rows(tables["overall"], ladders)
    for name, table in tables.items():
        _write_table(table, out, name)

    scores = [a.name for a in aggregates] + [spec.column for spec in specs] + list(RAW_COLUMNS)
    higher = directions(scores)
    result: dict[str, Any] = {
        "version": VERSION,
        "mode": inputs.mode,
        "normalization": settings.to_dict(),
        "metrics": [spec.name for spec in specs],
        "aggregates": {a.name: {"higher_is_better": higher.get(a.name)} for a in aggregates},
        "higher_is_better": higher,
        "descriptions": {spec.name: spec.description for spec in specs},
        "ci": {
            "method": "percentile bootstrap, documents resampled",
            "level": 0.95,
            "n_boot": n_boot,
            "seed": seed,
        },
        "versions": _versions(),
        "n_samples": len(frame),
        "n_docs": len(inputs.references),
        "missing_answers": int(frame["missing"].sum()),
        "errored_answers": int(frame["error"].notna().sum()),
        "duplicate_answers": inputs.duplicate_answers,
        "unmatched_answers": inputs.unmatched_answers,
        "docs_without_text": samples.docs_without_text,
        "mixed_script_answers": int(mixed.sum()),
        "invalid_references": validity.invalid_references,
        "overall": {row.metric: row.value for row in tables[OVERALL].itertuples()},
        "robustness": ladders,
    }
    # Robustness scores (area under the severity curve, relative to clean): higher is better.
    for name in result["overall"]:
        if name.startswith("robustness"):
            result["aggregates"][name] = {"higher_is_better": True}
            higher[name] = True
    partial = out / f".{METRICS_JSON}.tmp"
    partial.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(partial, out / METRICS_JSON)
    return result
