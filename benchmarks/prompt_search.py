"""Prompt search at no repeated cost: a 4-candidate search over the demo, then the merge.

Prints (1) the search over ``synth:demo`` (12 documents, 108 field requests per candidate)
with 4 candidates, the default among them: per candidate how many requests were asked and how
many came from the answer cache; (2) the merged collection run: the inference calls it made
(0 expected: every request was asked during the search); (3) the answer cache's cost per
request at ``--entries`` cached answers (100k by default): key computation, lookup of a hit,
lookup of a miss, in µs. The echo backend's oracle stands in for a model by default (its
answers depend on the prompt); ``--backend tesseract`` runs real OCR instead.
Run on demand: ``python benchmarks/prompt_search.py [--backend tesseract] [--entries 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

MARK = "ВЕРНО"


def candidates(folder: Path, fields: list[str]) -> list[str]:
    """Three collections, each marking a different third of the fields (plus the default)."""
    specs = []
    for index in range(3):
        chosen = fields[index::3]
        body = {
            "version": 1,
            "name": f"c{index + 1}",
            "defaults": {"field": "Напиши {field_label}."},
            "doc_types": {
                doc_type: {
                    "fields": {
                        name: {"prompt": f"{MARK}: напиши «{{field_label}}»."} for name in chosen
                    }
                }
                for doc_type in ("passport", "snils", "invoice")
            },
        }
        path = folder / f"c{index + 1}.json"
        path.write_text(json.dumps(body, ensure_ascii=False), "utf-8")
        specs.append(f"c{index + 1}={path}")
    return specs


def bench_search(backend: str, folder: Path) -> None:
    from vlmhb import api
    from vlmhb.data import load_dataset

    dataset = load_dataset("synth:demo")
    fields = sorted({name for doc in dataset.documents for name in doc.fields})
    load = {"oracle": str(dataset.root), "oracle_marker": MARK} if backend == "echo" else {}
    model = "echo-oracle" if backend == "echo" else "tesseract-rus"
    runs = folder / "runs"
    started = time.perf_counter()
    result = api.search_prompts(
        dataset="synth:demo",
        backend=backend,
        model=model,
        candidates=candidates(folder, fields),
        load=load,
        confirm=0.25,
        runs_dir=runs,
        isolation="local",
        report=False,
    )
    search_s = time.perf_counter() - started
    print(f"search: 4 candidates ({backend}) over synth:demo in {search_s:.1f} s")
    for name, outcome in result.runs.items():
        counts = outcome.counts
        print(
            f"  {name:8s} asked {counts.get('answered_now', 0):4d}  "
            f"reused {counts.get('reused', 0):4d}  of {counts.get('samples', 0)}"
        )
    fields_done = [s for s in result.selections if s.field != "(all)"]
    wins = sum(s.verdict == "win" for s in fields_done)
    print(f"  {wins} of {len(fields_done)} fields won beyond the noise, the rest ties")
    plan = folder / "merged_plan.csv"
    load_cell = json.dumps(load).replace('"', '""')
    plan.write_text(
        "dataset,backend,model,prompts,load\n"
        f'synth:demo,{backend},{model},{result.merged_json},"{load_cell}"\n',
        "utf-8",
    )
    started = time.perf_counter()
    (outcome,) = api.run_plan(plan, runs_dir=runs, isolation="local", progress=False).runs
    merged_s = time.perf_counter() - started
    counts = outcome.counts
    print(
        f"merged run: inference calls {counts.get('answered_now', 0)}, "
        f"answers reused {counts.get('reused', 0)} of {counts.get('samples', 0)}, "
        f"{merged_s:.1f} s (with scoring), exact {outcome.overall.get('exact_match', 0):.3f}"
    )


def bench_lookup(entries: int, folder: Path, probes: int = 20_000) -> None:
    from PIL import Image

    from vlmhb.run.answer_cache import AnswerCache, ImageHashes, request_key, settings_identity
    from vlmhb.run.dispatch import Sample

    image = folder / "page.png"
    Image.new("RGB", (1240, 1754), "white").save(image)
    cache = AnswerCache(folder / "lookup.sqlite", commit_every=10_000)
    settings = settings_identity(
        backend="hf", model="m", load={}, batch_size=8, env={"lock_hash": "x", "name": "hf"}
    )

    def sample(index: int) -> Sample:
        return Sample(
            id=f"doc{index // 10}:f{index % 10}",
            doc_id=f"doc{index // 10}",
            doc_type="passport",
            field=f"f{index % 10}",
            mode="field",
            prompt=f"Напиши значение поля «Поле {index % 10}». Ответь только значением.",
            system="Ты — внимательная система распознавания документов.",
            images=(str(image),),
            generation={"max_new_tokens": 64, "mode": "field"},
        )

    images = ImageHashes()
    started = time.perf_counter()
    for index in range(entries):
        cache.put(request_key(settings, sample(index), images), {"text": f"ответ {index}"})
    cache.commit()
    fill_s = time.perf_counter() - started
    size_mb = os.path.getsize(folder / "lookup.sqlite") / 1e6
    print(f"cache: {len(cache)} answers stored in {fill_s:.1f} s ({size_mb:.1f} MB)")
    rng = random.Random(0)
    hits = [sample(rng.randrange(entries)) for _ in range(probes)]
    misses = [sample(entries + i) for i in range(probes)]
    started = time.perf_counter()
    hit_keys = [request_key(settings, s, images) for s in hits]
    key_us = (time.perf_counter() - started) / probes * 1e6
    miss_keys = [request_key(settings, s, images) for s in misses]
    started = time.perf_counter()
    found = sum(cache.get(k) is not None for k in hit_keys)
    hit_us = (time.perf_counter() - started) / probes * 1e6
    started = time.perf_counter()
    stray = sum(cache.get(k) is not None for k in miss_keys)
    miss_us = (time.perf_counter() - started) / probes * 1e6
    assert found == probes and stray == 0
    print(
        f"per request at {entries} cached: key {key_us:.1f} µs (image hashed once per run), "
        f"hit {hit_us:.1f} µs, miss {miss_us:.1f} µs"
    )
    cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["echo", "tesseract"], default="echo")
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["VLMHB_CACHE_DIR"] = str(folder / "cache")  # a fresh cache for the figures
        os.environ.pop("VLMHB_NO_CACHE", None)
        bench_search(args.backend, folder)
        bench_lookup(args.entries, folder)


if __name__ == "__main__":
    main()
