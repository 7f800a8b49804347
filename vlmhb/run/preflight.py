"""Pre-flight: resolve every row of a plan and check what only its data can tell, writing nothing.

``prepare_checked`` runs after the plan itself is valid (``vlmhb.plan``) and before any run
folder exists. It reads each dataset once per row with the same checks as ``vlmhb data
check``, loads each prompt collection, and refuses, all problems of the whole plan at once:
bad annotation lines (unless ``skip_bad_documents``), empty datasets, ``doc_types``/``fields``
filters that select nothing, and sample ids that two documents would share. Rows that
resolve to one run id are run once. With ``skip_bad_documents`` bad lines and documents
whose images are unusable are left out and counted instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vlmhb.errors import InputError, PlanError, Problem, VlmhbError
from vlmhb.plan.plan_csv import EvalRun
from vlmhb.run.prepare import PreparedRun, doc_fields, prepare_run

PENDING_DEMO = "(demo not generated yet)"


def prepare_checked(
    runs: Iterable[EvalRun],
    runs_dir: Path,
    *,
    skip_bad_documents: bool = False,
    dry_run: bool = False,
    problems: Iterable[Problem] = (),
) -> list[PreparedRun]:
    """Prepare every row, or raise ``PlanError`` listing every problem of every row.

    ``problems``: those already found in the plan's other rows, reported with these.
    """
    problems = list(problems)
    prepared: list[PreparedRun] = []
    by_id: dict[str, int] = {}
    for run in runs:
        plan_file, row = _where(run)
        if dry_run and _demo_pending(run):
            prepared.append(_pending_demo_run(run, runs_dir))
            continue
        try:
            item = prepare_run(run, runs_dir)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        except VlmhbError as exc:
            problems.append(Problem(plan_file, row, "dataset", str(exc)))
            continue
        if skip_bad_documents:
            item = _without_bad_documents(item)
        else:
            problems.extend(item.dataset.problems)
        problems.extend(selection_problems(item, plan_file, row))
        if item.run.mode == "field":
            problems.extend(sample_id_collisions(item))
        if item.run_id in by_id:
            first = by_id[item.run_id]
            prepared[first] = dataclasses.replace(
                prepared[first], same_as=(*prepared[first].same_as, run.source)
            )
            continue
        by_id[item.run_id] = len(prepared)
        prepared.append(item)
    if problems:
        raise PlanError(list(dict.fromkeys(problems)))  # rows sharing a dataset: listed once
    return prepared


def _where(run: EvalRun) -> tuple[str, int | None]:
    plan_file, _, row = run.source.rpartition(":")
    return (plan_file, int(row)) if row.isdigit() else (run.source, None)


def selection_problems(item: PreparedRun, plan_file: str, row: int | None) -> list[Problem]:
    """An empty dataset, and ``doc_types``/``fields`` values that select nothing."""
    run, documents = item.run, item.dataset.documents
    if not documents:
        return [Problem(plan_file, row, "dataset", f"dataset {item.dataset.root} has no documents")]
    problems: list[Problem] = []
    types = sorted(documents.summary().doc_types)
    for doc_type in run.doc_types:
        if doc_type not in types:
            problems.append(
                Problem(plan_file, row, "doc_types", f"{doc_type!r} matches no document ({types})")
            )
    names = sorted(item.documents.summary().field_names)
    for name in run.fields:
        if name not in names:
            problems.append(
                Problem(plan_file, row, "fields", f"{name!r} is no field of the chosen documents")
            )
    if not problems and item.n_samples == 0:
        problems.append(Problem(plan_file, row, None, "the row selects no samples"))
    return problems


def sample_id_collisions(item: PreparedRun) -> list[Problem]:
    """``doc:field`` ids that two documents share (``a`` + ``b:c`` and ``a:b`` + ``c``)."""
    if not item.documents.summary().colons:
        return []  # without a colon in any id or field name the ids cannot collide
    where = str(item.dataset.annotation_file or item.dataset.root)
    owners: dict[str, tuple[str, str]] = {}
    problems: list[Problem] = []
    for document in item.documents.heads():
        for name in doc_fields(item.run, document):
            sample_id = f"{document.id}:{name}"
            owner = owners.setdefault(sample_id, (document.id, name))
            if owner[0] != document.id:
                problems.append(
                    Problem(
                        where,
                        document.line,
                        "id",
                        f"sample id {sample_id!r} of document {document.id!r} (field {name!r}) "
                        f"is also document {owner[0]!r} field {owner[1]!r}; rename one",
                    )
                )
    return problems


def _without_bad_documents(item: PreparedRun) -> PreparedRun:
    """Leave out unreadable lines and documents with any problem; count both, once each."""
    bad_rows = {p.row for p in item.dataset.problems if p.row is not None}
    kept = item.documents.filter(lambda d: not d.problems and d.line not in bad_rows)
    unread = bad_rows - {d.line for d in item.dataset.documents.heads()}  # lines with no document
    skipped = len(item.documents) - len(kept) + len(unread)
    if item.run.mode == "field":
        n_samples = sum(len(doc_fields(item.run, d)) for d in kept.heads())
    else:
        n_samples = len(kept)
    return dataclasses.replace(item, documents=kept, n_samples=n_samples, skipped_documents=skipped)


def _demo_pending(run: EvalRun) -> bool:
    if not run.dataset.startswith("synth:"):
        return False
    from vlmhb.data.demo import demo_folder

    return not (demo_folder() / "annotations.jsonl").is_file()


def _pending_demo_run(run: EvalRun, runs_dir: Path) -> PreparedRun:
    """A dry run's stand-in for a row on the demo dataset not generated yet (nothing made)."""
    from vlmhb.data.demo import demo_folder
    from vlmhb.data.documents import Dataset, DocumentList
    from vlmhb.plan.catalogue import env_name_for, resolve_model
    from vlmhb.plan.prompts import load_prompts

    prompts: Any = load_prompts(run.prompts, base=run.base_dir)
    try:
        model = resolve_model(run.model, run.backend).model
    except (LookupError, ValueError):  # echo answers under any name
        model = run.model
    return PreparedRun(
        run=run,
        run_id=PENDING_DEMO,
        run_dir=runs_dir / PENDING_DEMO,
        dataset=Dataset(demo_folder(), PENDING_DEMO, DocumentList()),
        prompts=prompts,
        model=model,
        env_name=env_name_for(run.backend, run.model, run.env),
        documents=DocumentList(),
        n_samples=0,
        dataset_hash="",
        prompts_hash=prompts.content_hash(),
    )
