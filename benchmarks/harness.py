"""Harness throughput with the echo backend: ``vlmhb run`` end to end against a plain loop.

* ``vlmhb run`` (``--isolation local``, echo in a worker subprocess, answers durable) on a
  native dataset of ``--n`` samples (8 fields a document, one small PNG each); its infer
  stage's speed is samples / run.json ``timings.generation_s`` (and over ``wall_s``).
* A plain in-process loop doing the same work per sample: read the image bytes, format the
  prompt, write one JSON line.
* Peak RSS of ``vlmhb run`` (the orchestrator, ``ru_maxrss`` of a child) as ``--sizes`` grow.
* Protocol encoding per request: ``dataclasses.asdict``, the worker's stdlib encoder, the
  runner's orjson.

Run on demand: ``python benchmarks/harness.py [--n 100000] [--sizes 10000,1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import asdict
from pathlib import Path

FIELDS = ("surname", "name", "patronymic", "birth_date", "sex", "birth_place", "series", "code")
PROMPT = "Прочитай документ и напиши значение поля «{field}». Ответь только значением."
# a valid 1x1 PNG: the echo backend checks each image's signature
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def make_dataset(root: Path, n_samples: int) -> Path:
    """``n_samples // 8`` documents of 8 fields, each with its own small PNG."""
    if (root / "annotations.jsonl").is_file():
        return root
    (root / "images").mkdir(parents=True, exist_ok=True)
    with (root / "annotations.jsonl").open("w", encoding="utf-8") as handle:
        for index in range(n_samples // len(FIELDS)):
            name = f"images/doc{index:07d}.png"
            (root / name).write_bytes(PNG)
            fields = {field: f"{field}-{index}" for field in FIELDS}
            doc = {"id": f"doc{index:07d}", "image": name, "doc_type": "passport", "fields": fields}
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return root


def write_plan(folder: Path, dataset: Path) -> Path:
    plan = folder / "plan.csv"
    plan.write_text(
        f"dataset,backend,model,stages,isolation\n{dataset},echo,echo,infer,local\n", "utf-8"
    )
    return plan


def through_vlmhb_run(plan: Path, runs: Path) -> tuple[dict, float]:
    """``vlmhb run`` in a child; its run.json timings and the child's peak RSS (MB)."""
    code = (
        "import resource, sys; from vlmhb.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('PEAK_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    # The answer cache stays off: a second size (same ids, images, prompts) would be all hits.
    done = subprocess.run(
        [sys.executable, "-c", code, "run", str(plan), "--runs-dir", str(runs), "--gpus", "",
         "--no-cache"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    peak = float(done.stdout.rsplit("PEAK_MB", 1)[1].split()[0])
    (run_json,) = runs.glob("*/run.json")
    return json.loads(run_json.read_text("utf-8")), peak


def plain_loop(dataset: Path, out: Path) -> tuple[int, float]:
    """The same work in one process: image bytes, prompt, one JSON line per sample."""
    docs = [json.loads(line) for line in (dataset / "annotations.jsonl").open(encoding="utf-8")]
    start = time.perf_counter()
    n = 0
    with out.open("w", encoding="utf-8") as handle:
        for doc in docs:
            for field in doc["fields"]:
                image = (dataset / doc["image"]).read_bytes()
                prompt = PROMPT.format(field=field)
                line = {"id": f"{doc['id']}:{field}", "prompt": prompt, "answer": prompt,
                        "bytes": len(image)}  # fmt: skip
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                n += 1
        handle.flush()
        os.fsync(handle.fileno())
    return n, time.perf_counter() - start


def encoding_costs() -> tuple[float, float, float]:
    """µs per request: ``dataclasses.asdict`` + ``json.dumps``; ``protocol.encode`` (the
    worker's, stdlib); ``fastjson.dumps_line`` (the runner's, orjson)."""
    from vlmhb.worker import protocol

    request = protocol.Request(
        id="passport-0001:surname", images=["/data/images/passport-0001.png"],
        prompt=PROMPT.format(field="surname"), system="Ты ассистент.", doc_type="passport",
        field="surname",
    )  # fmt: skip
    n = 50_000

    def through_asdict() -> str:
        return json.dumps(asdict(request), ensure_ascii=False, separators=(",", ":")) + "\n"

    from vlmhb.fastjson import dumps_line

    old = timeit.timeit(through_asdict, number=n) / n * 1e6
    worker = timeit.timeit(lambda: protocol.encode(request), number=n) / n * 1e6
    runner = timeit.timeit(lambda: dumps_line(vars(request)), number=n) / n * 1e6
    return old, worker, runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--sizes", default="10000,200000")
    args = parser.parse_args()
    old, worker, runner = encoding_costs()
    print(
        f"protocol encoding per request: asdict {old:.1f} us, plain dict + cached stdlib "
        f"encoder (worker) {worker:.1f} us, orjson (runner) {runner:.1f} us"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dataset = make_dataset(folder / f"ds{args.n}", args.n)
        record, _ = through_vlmhb_run(write_plan(folder, dataset), folder / "runs")
        timings = record["timings"]
        n = record["counts"]["answered"]
        loop_n, loop_s = plain_loop(dataset, folder / "plain.jsonl")
    gen_rate, wall_rate, loop_rate = (
        n / timings["generation_s"],
        n / timings["wall_s"],
        loop_n / loop_s,
    )
    print(f"vlmhb run, echo: {n} samples; timings {json.dumps(timings)}")
    print(f"  infer stage: {gen_rate:,.0f} samples/s over generation, {wall_rate:,.0f} over wall")
    print(f"plain in-process loop: {loop_rate:,.0f} samples/s")
    print(f"vlmhb run / plain loop: {gen_rate / loop_rate:.0%} (generation), "
          f"{wall_rate / loop_rate:.0%} (whole infer stage)")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            dataset = make_dataset(folder / "ds", size)
            record, peak = through_vlmhb_run(write_plan(folder, dataset), folder / "runs")
        rate = record["counts"]["answered"] / record["timings"]["generation_s"]
        print(f"{size:>8} samples: {rate:,.0f} samples/s, vlmhb run peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
