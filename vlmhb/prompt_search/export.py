"""The winners merged into one collection: native JSON and the v0.1 CSV, provenance per field.

In ``field`` mode each field gets the exact prompt (and system prompt) its winner asked, so
running the merged collection repeats the winners' requests word for word (and the answer
cache answers them). In ``document``/``text`` mode one request asks for every field, so each
document type takes the template of its winner over all its fields, with that candidate's
field labels. Each entry's ``meta.provenance`` says which candidate won, from which run,
by which metric over how many samples, and whether the win is real or a tie.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vlmhb.plan.prompts import PromptCollection
from vlmhb.prompt_search.candidates import Candidate
from vlmhb.prompt_search.select import ALL_FIELDS, Selection


def provenance(
    selection: Selection, candidate: Candidate, run_ids: Mapping[str, str], metric: str
) -> dict[str, Any]:
    """Where one merged entry comes from and how sure the choice is."""
    score = selection.scores[selection.winner]
    confirm = selection.confirm.get(selection.winner)
    return {
        "candidate": candidate.name,
        "prompts": candidate.prompts,
        "system_prompt": candidate.system_prompt,
        "run_id": run_ids[candidate.name],
        "runs": dict(run_ids),
        "metric": metric,
        "score": score.value,
        "ci": [score.low, score.high],
        "n": score.n,
        "n_docs": score.n_docs,
        "verdict": selection.verdict,
        "runner_up": selection.runner_up,
        "vs_runner_up": asdict(selection.vs_runner_up) if selection.vs_runner_up else None,
        "vs_default": asdict(selection.vs_default) if selection.vs_default else None,
        "default_verdict": selection.default_verdict,
        "confirm_score": confirm.value if confirm else None,
        "confirm_n": confirm.n if confirm else None,
    }


def merged_collection(
    name: str,
    mode: str,
    selections: list[Selection],
    candidates: Mapping[str, Candidate],
    collections: Mapping[str, PromptCollection],
    default: PromptCollection,
    run_ids: Mapping[str, str],
    metric: str,
) -> dict[str, Any]:
    """The merged collection as a native JSON-ready dict (validated by the caller)."""
    doc_types: dict[str, dict[str, Any]] = {}
    if mode == "field":
        for s in selections:
            if s.field == ALL_FIELDS:
                continue
            candidate, collection = candidates[s.winner], collections[s.winner]
            rendered = collection.render(s.doc_type, s.field, [], "field")
            kind = doc_types.setdefault(s.doc_type, {"fields": {}})
            kind["fields"][s.field] = {
                "label": collection.field_label(s.doc_type, s.field),
                "prompt": rendered.prompt,
                "system": candidate.system_prompt or rendered.system,
                "meta": {"provenance": provenance(s, candidate, run_ids, metric)},
            }
    else:
        fields_of: dict[str, list[str]] = {}
        for s in selections:
            if s.field != ALL_FIELDS:
                fields_of.setdefault(s.doc_type, []).append(s.field)
        for s in selections:
            if s.field != ALL_FIELDS:
                continue
            candidate, collection = candidates[s.winner], collections[s.winner]
            source = collection.model.doc_types.get(s.doc_type)
            origin = provenance(s, candidate, run_ids, metric)
            doc_types[s.doc_type] = {
                "label": source.label if source else None,
                mode: collection.template(s.doc_type, None, mode),
                "system": candidate.system_prompt
                or (source.system if source else None)
                or collection.model.system,
                "fields": {
                    f: {
                        "label": collection.field_label(s.doc_type, f),
                        "meta": {"provenance": origin},
                    }
                    for f in fields_of.get(s.doc_type, [])
                },
            }
    return {
        "version": 1,
        "name": name,
        "language": default.model.language,
        "system": None,
        "defaults": default.model.defaults.model_dump(),
        "doc_types": doc_types,
    }


def write_v01_csv(path: Path, merged: dict[str, Any], cer: Mapping[tuple[str, str], float]) -> Path:
    """The merged field prompts as a v0.1 collection: ``prompt;doc_class_question_type;cer``.

    ``cer`` is, as in v0.1, the CER the prompt scored (on the confirm part when there is one).
    v0.1 keeps system prompts in the task CSV, so they are not part of this file.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["prompt", "doc_class_question_type", "cer"])
        for doc_type, kind in merged["doc_types"].items():
            for field_name, spec in kind["fields"].items():
                value = cer.get((doc_type, field_name))
                writer.writerow(
                    [
                        spec["prompt"],
                        f"{doc_type} {field_name}",
                        "" if value is None else f"{value:.4g}",
                    ]
                )
    os.replace(tmp, path)
    return path
