"""Render a synthetic dataset into the native format, deterministically and in parallel.

Document ``i`` of type ``k`` draws everything from a seed derived from (seed, k, i), so the
bytes of every image and every annotation line depend only on the configuration, never on the
number of worker processes. Each variant (``clean``, ``blur``, ``rotate+jpeg`` …) of a document
is its own sample with the same ground truth, tagged with the degradations applied.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmhb.data.synth.degrade import apply_variant, parse_variant, with_clean
from vlmhb.data.synth.fields import DOC_FIELDS
from vlmhb.errors import VlmhbError

GENERATOR_VERSION = 2  # 2: valid department codes, severity ladders


class SynthError(VlmhbError):
    """A synthetic dataset cannot be generated with this configuration."""


@dataclass(frozen=True)
class SynthConfig:
    """What to generate: document kinds, documents per kind, seed, variants per document."""

    kinds: tuple[str, ...] = ("passport", "snils", "invoice")
    n: int = 10
    seed: int = 0
    variants: tuple[str, ...] = ("clean",)

    def validate(self) -> None:
        """Raise ``SynthError`` naming the first unknown kind or degradation."""
        unknown = [k for k in self.kinds if k not in DOC_FIELDS]
        if unknown:
            raise SynthError(
                f"unknown document kind {', '.join(unknown)}; known: {', '.join(DOC_FIELDS)}"
            )
        if self.n < 1:
            raise SynthError("n must be at least 1")
        for variant in self.variants:
            try:
                parse_variant(variant)
            except ValueError as exc:
                raise SynthError(str(exc)) from exc

    def digest(self) -> str:
        """Short hash of the configuration and generator version (names the demo folder)."""
        text = json.dumps([GENERATOR_VERSION, self.kinds, self.n, self.seed, self.variants])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def document_seed(seed: int, kind: str, index: int, salt: str = "") -> int:
    """A 64-bit seed for one document (and one variant, with ``salt``)."""
    digest = hashlib.sha256(f"{seed}:{kind}:{index}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class RenderJob:
    """One document to render in all its variants, into folder ``out``."""

    kind: str
    index: int
    seed: int
    variants: tuple[str, ...]
    out: str


def render_job(job: RenderJob) -> list[dict[str, Any]]:
    """Render one document in all its variants; write the images; return annotation records."""
    from vlmhb.data.synth.layouts import LAYOUTS
    from vlmhb.data.synth.values import VALUES

    base_seed = document_seed(job.seed, job.kind, job.index)
    values = VALUES[job.kind](base_seed)
    page = LAYOUTS[job.kind](values, random.Random(base_seed))
    source_id = f"{job.kind}-{job.index:04d}"
    keys = [spec.key for spec in DOC_FIELDS[job.kind]]
    records = []
    for variant in job.variants:
        parts = parse_variant(variant)
        boxes = {k: list(v) for k, v in page.boxes.items()}
        rng = random.Random(document_seed(job.seed, job.kind, job.index, variant))
        image, params, quality = apply_variant(page.image, parts, rng, boxes)
        suffix = "+".join(parts).replace(":", "")  # blur:3 -> blur3 in ids and file names
        doc_id = source_id if not parts else f"{source_id}-{suffix}"
        rel = f"images/{doc_id}.{'jpg' if quality else 'png'}"
        _save(image, Path(job.out) / rel, quality)
        meta: dict[str, Any] = {"source_id": source_id, "generator": GENERATOR_VERSION,
                                "bboxes": {k: boxes[k] for k in keys if k in boxes}}  # fmt: skip
        if params:
            meta["degradation"] = params
        if "_items" in values:
            meta["items"] = values["_items"]
        records.append({
            "id": doc_id, "image": rel, "doc_type": job.kind,
            "fields": {k: values[k] for k in keys}, "text": page.transcript(),
            "tags": list(parts) or ["clean"], "meta": meta,
        })  # fmt: skip
    return records


def _save(image: Any, path: Path, quality: int | None) -> None:
    buffer = io.BytesIO()
    if quality:
        image.save(buffer, "JPEG", quality=quality, optimize=False)
    else:
        image.save(buffer, "PNG", compress_level=3)
    path.write_bytes(buffer.getvalue())


def synthesize(out: Path, config: SynthConfig, workers: int | None = None) -> Path:
    """Generate the dataset of ``config`` into folder ``out``; returns its ``annotations.jsonl``.

    ``workers`` defaults to the CPUs this process may use (1 for small datasets).
    """
    config.validate()
    from vlmhb.data.synth.fonts import font

    font(20)  # fail early, with the package to install, if DejaVu is missing
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    variants = with_clean(config.variants)  # a ladder always has its level 0
    jobs = [
        RenderJob(kind, i, config.seed, variants, str(out))
        for kind in config.kinds
        for i in range(1, config.n + 1)
    ]
    if workers is None:
        workers = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
        workers = 1 if len(jobs) < 24 else workers
    if workers <= 1:
        results = [render_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(render_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    path = out / "annotations.jsonl"
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for records in results:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
