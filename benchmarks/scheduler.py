"""Scheduler efficiency: 40 echo runs over 4 fake GPU slots, against the ideal.

Every run asks for one GPU (the ids are stand-ins; echo needs none) and answers a few
samples with a fixed delay, so runs last between ~0.5 and ~2 s. Prints:

* wall time of the whole plan against the ideal ``sum of run times / slots`` (each run's
  time from its start to its end as the scheduler recorded them, worker start included);
* the scheduler's overhead per run: slot time not spent inside any run, divided by runs,
  and the mean gap between one run ending on a slot and the next starting there;
* the runner's own cost per run (run time minus the echo delays: worker spawn, handshake,
  run.json, answers.csv).

Run on demand: ``python benchmarks/scheduler.py [--runs 40] [--slots 4]``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

from vlmhb.executors.local import Slots, read_schedule, run_scheduled
from vlmhb.run.prepare import prepare_plan

DOCS = 4


def write_inputs(folder: Path, runs: int) -> tuple[Path, list[float]]:
    """A 4-document dataset and a plan of ``runs`` echo rows; returns each run's delay sum."""
    from PIL import Image

    data = folder / "ds"
    (data / "images").mkdir(parents=True)
    with (data / "annotations.jsonl").open("w", encoding="utf-8") as handle:
        for index in range(DOCS):
            Image.new("RGB", (32, 16), "white").save(data / "images" / f"{index}.png")
            line = {
                "id": f"doc{index}",
                "image": f"images/{index}.png",
                "doc_type": "passport",
                "fields": {"surname": f"Иванов{index}"},
            }
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    plan = folder / "plan.csv"
    work = []
    with plan.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "backend", "model", "stages", "gpus", "batch_size", "load"])
        for index in range(runs):
            delay = 0.1 + 0.1 * (index % 4)  # 0.1 .. 0.4 s a sample
            work.append(delay * DOCS)
            load = json.dumps({"delay_s": delay, "check_images": False})
            writer.writerow(["ds", "echo", f"echo-{index:02d}", "infer", 1, 1, load])
    return plan, work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vlmhb-bench-sched-") as tmp:
        folder = Path(tmp)
        plan, work = write_inputs(folder, args.runs)
        runs_dir = folder / "runs"
        prepared = prepare_plan(plan, runs_dir=runs_dir, isolation="local")
        slots = Slots(gpus=tuple(str(i) for i in range(args.slots)))
        started, epoch = time.perf_counter(), time.time()
        outcomes = run_scheduled(prepared, slots, runs_dir=runs_dir, progress=False)
        wall = time.perf_counter() - started
        finished = time.time()
        assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
        events = read_schedule(runs_dir)
    spans: dict[int, dict] = {}
    for event in events:
        spans.setdefault(event["index"], {"gpus": event["gpus"]})[event["event"]] = event["time"]
    run_times = [s["end"] - s["start"] for s in spans.values()]
    ideal = sum(run_times) / args.slots
    gaps = []
    for slot in slots.gpus:
        on_slot = sorted((s["start"], s["end"]) for s in spans.values() if slot in s["gpus"])
        gaps += [b[0] - a[1] for a, b in itertools.pairwise(on_slot)]
    first_start = min(s["start"] for s in spans.values()) - epoch
    tail = (
        sum(
            finished - max(s["end"] for s in spans.values() if slot in s["gpus"])
            for slot in slots.gpus
        )
        / args.slots
    )
    runner_cost = [s["end"] - s["start"] - work[i] for i, s in spans.items()]
    print(f"{args.runs} echo runs over {args.slots} fake GPU slots")
    print(f"  wall time            {wall:8.2f} s")
    print(f"  ideal (sum/slots)    {ideal:8.2f} s   (sum of run times {sum(run_times):.2f} s)")
    print(f"  efficiency           {ideal / wall:8.1%}")
    print(f"  overhead per run     {(wall - ideal) * args.slots / args.runs * 1000:8.1f} ms")
    print(
        f"  slot gap end->start  {statistics.mean(gaps) * 1000:8.1f} ms mean, "
        f"{max(gaps) * 1000:.1f} ms max"
    )
    print(
        f"  first start after    {first_start * 1000:8.1f} ms; idle tail per slot "
        f"{tail * 1000:.0f} ms mean (the last runs end unevenly)"
    )
    print(
        f"  runner cost per run  {statistics.mean(runner_cost) * 1000:8.1f} ms mean "
        "(run time minus echo delays: worker spawn, handshake, records)"
    )


if __name__ == "__main__":
    main()
