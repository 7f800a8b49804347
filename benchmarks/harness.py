"""Harness throughput: N requests through the echo backend in a worker subprocess.

Prints samples/s with answers written durably (answers.jsonl, flushed in groups, fsync at
the end), the per-sample overhead against the same echo backend called in-process, and
the orchestrator's peak RSS as the sample count grows (each size in a fresh process).
Run on demand: ``python benchmarks/harness.py [--n 100000] [--sizes 10000,200000]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vlmhb.run.child_env import child_environment
from vlmhb.run.dispatch import Dispatcher, DispatchSettings, Sample
from vlmhb.run.folder import AnswerLog
from vlmhb.run.worker_process import WorkerCommand
from vlmhb.worker import protocol
from vlmhb.worker.backends.echo import EchoBackend

LOAD = {"check_images": False}


def samples(n: int):
    for index in range(n):
        yield Sample(
            id=f"doc{index // 8:07d}:field{index % 8}",
            doc_id=f"doc{index // 8:07d}",
            doc_type="passport",
            field=f"field{index % 8}",
            mode="field",
            prompt="Напиши фамилию владельца паспорта. Ответь одним словом.",
            system=None,
            images=(f"/data/images/{index // 8:07d}.png",),
            generation={"max_new_tokens": 32, "mode": "field"},
        )


def through_subprocess(n: int, folder: Path, batch_size: int = 64) -> float:
    log = AnswerLog(folder / "answers.jsonl")
    dispatcher = Dispatcher(
        WorkerCommand([sys.executable, "-m", "vlmhb.worker"], child_environment()),
        protocol.Init(backend="echo", model="echo", load=LOAD, batch_size=batch_size),
        log,
        folder / "worker.log",
        DispatchSettings(window=4 * batch_size),
    )
    start = time.perf_counter()
    dispatcher.run(samples(n))
    log.close()
    elapsed = time.perf_counter() - start
    assert dispatcher.stats.answered == n, dispatcher.stats
    return elapsed


def in_process(n: int) -> float:
    backend = EchoBackend()
    backend.load(protocol.Init(backend="echo", model="echo", load=LOAD))
    start = time.perf_counter()
    for sample in samples(n):
        request = protocol.Request(
            id=sample.id,
            images=list(sample.images),
            prompt=sample.prompt,
            generation=sample.generation,
        )
        backend.generate([request])
    return time.perf_counter() - start


def child_size(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        elapsed = through_subprocess(n, Path(tmp))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "seconds": elapsed, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_size(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sub_s = through_subprocess(args.n, Path(tmp))
        lines = len((Path(tmp) / "answers.jsonl").read_bytes().splitlines())
    local_s = in_process(args.n)
    print(
        f"subprocess echo, durable answers: {args.n} samples in {sub_s:.2f} s "
        f"= {args.n / sub_s:,.0f} samples/s ({lines} lines written)"
    )
    print(f"in-process echo: {args.n / local_s:,.0f} samples/s")
    print(
        f"harness overhead per sample: {(sub_s - local_s) / args.n * 1e6:.1f} us "
        f"(ratio {sub_s / local_s:.1f}x)"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out)
        print(
            f"{size:>8} samples: {size / result['seconds']:,.0f} samples/s, "
            f"orchestrator peak RSS {result['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
