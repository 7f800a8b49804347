"""Benchmark pre-flight validation: ``vlmhb run --dry-run`` on a 100,000-document dataset.

Run from the checkout: ``.venv/bin/python benchmarks/validation.py [--docs 100000] [--fields 3]``.
A native dataset is written to a temporary folder (one small real PNG per document, three
fields each), then ``vlmhb run PLAN --dry-run`` runs in a fresh process, twice: the first run
reads every image from the page cache as it was just written, like any later run. Printed:
wall time, CPU time and the peak RSS of that process (``resource.getrusage`` of the child),
and the machine's load average (on a shared machine the wall time follows it). Everything
``run`` checks before inference happens here: the plan, every annotation line (pydantic),
every image header (Pillow), the content hash of the annotations and images (the run id),
sample-id collisions, filters, and the row's model, metrics, env and options.

Targets (issue #14): <= 5 s and <= 300 MB for 100,000 documents.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_dataset(root: Path, n_docs: int, n_fields: int) -> None:
    """``n_docs`` documents, each with its own PNG file (same bytes, written fast)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 32), 255).save(buffer, "PNG")
    png = buffer.getvalue()
    (root / "images").mkdir(parents=True)
    with (root / "annotations.jsonl").open("w", encoding="utf-8") as handle:
        for index in range(n_docs):
            name = f"images/doc{index:06d}.png"
            (root / name).write_bytes(png)
            fields = {f"field_{k}": f"значение {index} {k}" for k in range(n_fields)}
            record = {"id": f"doc{index:06d}", "image": name, "doc_type": "passport"}
            handle.write(json.dumps({**record, "fields": fields}, ensure_ascii=False) + "\n")


def dry_run(plan: Path, runs: Path) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one ``vlmhb run --dry-run`` process,
    and its stdout's last table row. CPU time is what the process cost whatever the load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "vlmhb.cli", "run", str(plan), "--runs-dir", str(runs), "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"dry run failed ({result.returncode}): {result.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # ru_maxrss of children is the largest child so far (the runs are alike, so it is theirs)
    return wall, cpu, after.ru_maxrss / 1024, result.stdout.strip().splitlines()[-2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--fields", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vlmhb-validation-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_dataset(root / "ds", args.docs, args.fields)
        print(f"dataset: {args.docs} documents written in {time.perf_counter() - started:.1f} s")
        plan = root / "plan.csv"
        plan.write_text("dataset,backend,model,metrics\nds,echo,m,cer\n", encoding="utf-8")
        for attempt in (1, 2):
            wall, cpu, rss_mb, line = dry_run(plan, root / "runs")
            print(
                f"dry run {attempt}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss_mb:.0f} MB"
                f"  [{line.strip()}]"
            )
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        assert not (root / "runs").exists(), "a dry run wrote a run folder"
    print("targets: <= 5 s, <= 300 MB")


if __name__ == "__main__":
    main()
