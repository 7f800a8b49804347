"""Resolve a plan row into a run: dataset, prompts, model, env, and the run id.

``prepare_run`` gathers everything that determines a run's answers (dataset content, prompts,
model, backend, generation parameters) and derives the run id from it, so a changed prompt
never silently reuses old answers. ``iter_samples`` builds the run's requests lazily;
``new_record`` and ``write_references`` lay out what the run folder starts with.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vlmhb
from vlmhb.errors import RunDirError
from vlmhb.plan.catalogue import env_name_for
from vlmhb.plan.plan_csv import EvalRun, read_plan
from vlmhb.run.dispatch import Sample
from vlmhb.run.folder import REFERENCES, RUN_JSON, RunRecord
from vlmhb.run.identity import ModelIdentity, env_identity, model_identity

if TYPE_CHECKING:
    from vlmhb.data.documents import Dataset, Document, DocumentHead, DocumentList
    from vlmhb.plan.prompts import PromptCollection


@dataclass(frozen=True)
class PreparedRun:
    """A plan row resolved against its dataset and prompts, with its run id."""

    run: EvalRun
    run_id: str
    run_dir: Path
    dataset: Dataset
    prompts: PromptCollection
    model: str
    env_name: str
    documents: DocumentList  # decoded as read: a million samples stay in tens of MB
    n_samples: int
    dataset_hash: str
    prompts_hash: str
    skipped_documents: int = 0  # --skip-bad-documents: bad lines and documents left out
    same_as: tuple[str, ...] = ()  # other plan rows (file:row) that resolve to this run
    model_identity: ModelIdentity | None = None
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def isolation(self) -> str:
        """The isolation this run uses."""
        return self.run.isolation or "local"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.rsplit("/", 1)[-1]).strip("-")[:40] or "model"


def _select_documents(run: EvalRun, documents: DocumentList) -> DocumentList:
    chosen = documents.filter(lambda d: d.doc_type in run.doc_types) if run.doc_types else documents
    return chosen[: run.limit] if run.limit else chosen


def doc_fields(run: EvalRun, document: Document | DocumentHead) -> list[str]:
    """The fields of ``document`` this run asks about (its ``fields`` filter applied)."""
    return [name for name in document.fields if not run.fields or name in run.fields]


def _resolve_model(run: EvalRun) -> str:
    from vlmhb.plan.catalogue import resolve_model

    try:
        return resolve_model(run.model, run.backend).model
    except (LookupError, ValueError):
        return run.model


def prepare_run(run: EvalRun, runs_root: Path) -> PreparedRun:
    """Load the dataset and prompts of a plan row and derive its run id and folder."""
    from vlmhb.data import load_dataset
    from vlmhb.plan.prompts import load_prompts

    dataset = load_dataset(run.dataset, base=run.base_dir)
    prompts = load_prompts(run.prompts, base=run.base_dir)
    documents = _select_documents(run, dataset.documents)
    model = _resolve_model(run)
    dataset_hash, prompts_hash = dataset.content_hash(), prompts.content_hash()
    env_name = env_name_for(run.backend, run.model, run.env)
    model_id = model_identity(run.model, model, run.backend, run.revision)
    identity = {
        "dataset": dataset_hash,
        "doc_types": run.doc_types,
        "fields": run.fields,
        "limit": run.limit,
        "backend": run.backend,
        "model": model_id.as_dict(),
        "env": env_identity(run.isolation or "local", env_name, run.backend),
        "prompts": prompts_hash,
        "system_prompt": run.system_prompt,
        "mode": run.mode,
        "max_new_tokens": run.max_new_tokens,
        "load": run.load,
        "generation": run.generation,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    run_id = f"{_slug(run.model)}-{run.backend}-{digest}"
    if run.mode == "field" and not run.fields:
        n_samples = documents.summary().n_fields
    elif run.mode == "field":
        n_samples = sum(len(doc_fields(run, d)) for d in documents.heads())
    else:
        n_samples = len(documents)
    return PreparedRun(
        run=run,
        run_id=run_id,
        run_dir=runs_root / run_id,
        dataset=dataset,
        prompts=prompts,
        model=model,
        env_name=env_name,
        documents=documents,
        n_samples=n_samples,
        dataset_hash=dataset_hash,
        prompts_hash=prompts_hash,
        model_identity=model_id,
        identity=identity,
    )


def iter_samples(prepared: PreparedRun) -> Iterator[Sample]:
    """Every sample of the run, built lazily (memory stays flat for big datasets)."""
    run = prepared.run
    # One options dict for every sample that adds nothing of its own (shared: read-only).
    shared_generation = {"max_new_tokens": run.max_new_tokens, **run.generation, "mode": run.mode}
    # Documents of one type ask the same prompts: render each once (a bounded memo).
    rendered_for: dict[tuple[str, str | None, tuple[str, ...]], Any] = {}
    for document in prepared.documents:
        problem = "; ".join(document.problems) if document.problems else None
        images = tuple(str(image) for image in document.images)
        fields = doc_fields(run, document)
        targets: list[str | None] = list(fields) if run.mode == "field" else [None]
        for field_name in targets:
            key = (document.doc_type, field_name, () if field_name else tuple(fields))
            rendered = rendered_for.get(key)
            if rendered is None:
                if len(rendered_for) >= 4096:
                    rendered_for.clear()
                rendered = prepared.prompts.render(document.doc_type, field_name, fields, run.mode)
                rendered_for[key] = rendered
            generation = shared_generation
            if run.mode == "document":
                generation = dict(shared_generation, fields=fields)
            zone = (document.meta.get("bboxes") or {}).get(field_name) if field_name else None
            if isinstance(zone, list) and len(zone) == 4:
                # the field's box, for zonal OCR (tesseract backend)
                generation = dict(generation, zone=zone)
            yield Sample(
                id=f"{document.id}:{field_name}" if field_name else str(document.id),
                doc_id=str(document.id),
                doc_type=document.doc_type,
                field=field_name,
                mode=run.mode,
                prompt=rendered.prompt,
                system=run.system_prompt or rendered.system,
                images=images,
                generation=generation,
                problem=problem,
            )


def prepare_plan(
    plan: Path | str,
    *,
    runs_dir: Path = Path("runs"),
    isolation: str | None = None,
    skip_bad_documents: bool = False,
    dry_run: bool = False,
    concurrency: tuple[int, ...] | None = None,
) -> list[PreparedRun]:
    """Validate a plan and resolve every run (datasets, prompts, run ids); touches nothing.

    Rows with several concurrency levels (or every streaming row, given ``concurrency``)
    become one run per level (``vlmhb.plan.sweep``).
    """
    from vlmhb.plan.sweep import expand_sweeps
    from vlmhb.run.preflight import prepare_checked

    rows, problems = read_plan(plan, isolation=isolation)  # type: ignore[arg-type]
    runs = expand_sweeps(rows, concurrency)
    return prepare_checked(
        runs, runs_dir, skip_bad_documents=skip_bad_documents, dry_run=dry_run, problems=problems
    )


def _generator(meta: dict[str, Any]) -> str | None:
    """``vlmhb-synth-<version>`` for documents of vlmhb's generator (reports may show them)."""
    version = meta.get("generator")
    return f"vlmhb-synth-{version}" if isinstance(version, int) and meta.get("source_id") else None


def write_references(prepared: PreparedRun) -> Path:
    """``references.jsonl``: the ground truth of the run's documents (for the metrics stage)."""
    target = prepared.run_dir / REFERENCES
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for document in prepared.documents:
            handle.write(
                json.dumps(
                    {
                        "doc_id": str(document.id),
                        "doc_type": document.doc_type,
                        "fields": {k: v for k, v in document.fields.items()},
                        "text": document.text,
                        "tags": list(document.tags),
                        "images": [str(image) for image in document.images],
                        "field_types": document.meta.get("field_types") or {},
                        "generated_by": _generator(document.meta),
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    tmp.replace(target)
    return target


def new_record(prepared: PreparedRun) -> RunRecord:
    """The initial ``run.json`` of a run."""
    run = prepared.run
    return RunRecord(
        run_id=prepared.run_id,
        plan_row=run.model_dump(mode="json", exclude={"source"}),
        source=run.source,
        dataset=str(prepared.dataset.root),
        dataset_name=prepared.dataset.name,
        dataset_hash=prepared.dataset_hash,
        prompts=run.prompts,
        prompts_hash=prepared.prompts_hash,
        backend=run.backend,
        model=run.model,
        model_path=prepared.model,
        model_revision=prepared.model_identity.revision if prepared.model_identity else None,
        identity=prepared.identity,
        mode=run.mode,
        metrics=list(run.metrics),
        generation={"max_new_tokens": run.max_new_tokens, **run.generation},
        isolation=prepared.isolation,
        host={
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        counts={
            "samples": prepared.n_samples,
            "documents": len(prepared.documents),
            **(
                {"skipped_documents": prepared.skipped_documents}
                if prepared.skipped_documents
                else {}
            ),
        },
        vlmhb_version=vlmhb.__version__,
    )


def require_run_dir(run_dir: Path) -> Path:
    """Check a folder is a run folder (has ``run.json``)."""
    if not (run_dir / RUN_JSON).is_file():
        raise RunDirError(f"{run_dir}: not a run folder (no run.json)")
    return run_dir
