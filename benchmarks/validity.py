"""Field validity speed: classify 100,000 realistic field answers as valid-but-wrong or invalid.

``python benchmarks/validity.py [--fields N]``: the answers and references of
``benchmarks/metrics.py`` (Russian passport fields, VLM-style errors), grouped into documents;
prints the seconds of ``vlmhb.metrics._validity.classify`` (every typed field's validator and
the cross-field date rules, answers and references), cold and warm (validator results are
cached per value), and the load average: read the figures against it on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import metrics as fields_bench

from vlmhb.metrics._validity import classify
from vlmhb.validity import field_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=100_000)
    args = parser.parse_args()
    names, hyps, refs = fields_bench.make_fields(args.fields)
    docs: list[str] = []
    seen: set[str] = set()
    for name in names:  # a new document whenever a field repeats
        if name in seen or not docs:
            seen = set()
            docs.append(f"d{len(docs)}")
        else:
            docs.append(docs[-1])
        seen.add(name)
    types = [field_type("passport", name) for name in names]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for label in ("cold", "warm"):
        start = time.perf_counter()
        result = classify(docs, names, types, hyps, refs)
        seconds = time.perf_counter() - start
        wrong = sum(v == "valid_but_wrong" for v in result.verdicts)
        typed = sum(1 for t in types if t)
        print(f"classify {args.fields:,} fields ({typed:,} typed), {label}: {seconds:.2f} s; "
              f"valid but wrong {wrong:,}")  # fmt: skip


if __name__ == "__main__":
    main()
