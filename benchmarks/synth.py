"""Benchmark: how fast the synthetic generator renders clean documents.

Usage: ``python benchmarks/synth.py [--docs 1000] [--workers 2] [--degrade clean]``.
Prints documents, wall seconds, documents per second and the dataset size on disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vlmhb.data.synth.generate import SynthConfig, synthesize


def main() -> None:
    """Render ``--docs`` documents (split evenly over the three kinds) into a temp folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--degrade", default="clean")
    args = parser.parse_args()
    kinds = ("passport", "snils", "invoice")
    per_kind = -(-args.docs // len(kinds))
    config = SynthConfig(kinds=kinds, n=per_kind, seed=0, variants=tuple(args.degrade.split(",")))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = synthesize(Path(folder), config, workers=args.workers)
        wall = time.perf_counter() - start
        count = sum(1 for _ in path.open(encoding="utf-8"))
        size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    print(
        f"{count} documents, {args.workers} workers: {wall:.1f} s wall, "
        f"{count / wall:.0f} documents/s, {size / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
