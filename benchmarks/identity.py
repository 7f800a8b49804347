"""Benchmark the model part of the run id: hashing a local model folder, first and cached.

Run from the checkout: ``.venv/bin/python benchmarks/identity.py [--gb 1.0] [--files 4]``.
A temporary folder of random "weights" (``--gb`` in ``--files`` shards) stands in for a
checkpoint; everything (the hash cache included) lives in a temporary ``VLMHB_HOME``.
Printed: the first hash (reads every byte: MB/s), the cached hash (a listing and one small
file), and resolving a hub id's commit from a hub-cache layout. Targets: the cached lookup
well under 10 ms, so preparing a plan never re-reads weights; the first hash at disk speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VLMHB_HOME"] = str(Path(tmp) / "home")
        os.environ["HF_HUB_CACHE"] = str(Path(tmp) / "hub")
        from vlmhb.run.identity import folder_hash, resolve_hub_revision

        folder = Path(tmp) / "model"
        folder.mkdir()
        shard = int(args.gb * (1 << 30) / args.files)
        for index in range(args.files):
            with (folder / f"model-{index:05d}.safetensors").open("wb") as handle:
                for _ in range(shard >> 24):
                    handle.write(os.urandom(1 << 24))
        (folder / "config.json").write_text("{}", encoding="utf-8")
        started = time.perf_counter()
        folder_hash(folder)
        first = time.perf_counter() - started
        cached = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            folder_hash(folder)
            cached.append(time.perf_counter() - started)
        hub = Path(tmp) / "hub" / "models--org--name"
        (hub / "refs").mkdir(parents=True)
        (hub / "refs" / "main").write_text("c" * 40, encoding="utf-8")
        (hub / "snapshots" / ("c" * 40)).mkdir(parents=True)
        resolved = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            resolve_hub_revision("org/name")
            resolved.append(time.perf_counter() - started)
    size_mb = args.gb * 1024
    print(f"folder of {size_mb:.0f} MB in {args.files} files")
    print(f"first hash:    {first:.2f} s ({size_mb / first:.0f} MB/s)")
    print(f"cached hash:   {statistics.median(cached) * 1000:.2f} ms (median of {args.repeat})")
    print(f"hub revision:  {statistics.median(resolved) * 1000:.3f} ms (median of {args.repeat})")


if __name__ == "__main__":
    main()
