"""Ray executor against the local scheduler: 40 echo runs over 4 fake GPU slots, same plan.

The plan is ``benchmarks/scheduler.py``'s (each run answers 4 samples with a fixed delay,
0.4 to 1.6 s of work a run). It runs once through the local GPU-slot scheduler and once
through ``--executor ray`` on a loopback Ray head declaring 4 GPUs (``vlmhb.executors.ray_local``;
Ray slots the stand-in GPUs and sets ``CUDA_VISIBLE_DEVICES``). Prints, for each:

* wall time of the whole plan against the ideal ``sum of echo work / slots``;
* overhead per run: slot time not spent on echo work, divided by runs (worker spawn,
  handshake, records, and for Ray the task round trip);
* for Ray, the one-off costs outside the plan's wall time: cluster start and driver connect;
* the total time ratio Ray / local.

Run on demand: ``python benchmarks/ray_executor.py [--runs 40] [--slots 4]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler import write_inputs

from vlmhb.executors.local import Slots, read_schedule, run_scheduled
from vlmhb.executors.ray import RayOptions, import_ray, read_events, run_on_ray
from vlmhb.executors.ray_local import LoopbackCluster
from vlmhb.run.prepare import prepare_plan


@dataclass
class Figures:
    """What one executor did with the plan (seconds)."""

    wall: float  # the whole plan
    gap: float  # mean, from one run's end to the next start on the same GPU
    run: float  # mean run time (worker spawn to answers.csv)
    first_start: float  # from the call to the first run starting
    concurrency: float  # runs going at once, on average, between first start and last end


def figures(runs_dir: Path, devices: dict[str, str], submitted: float, wall: float) -> Figures:
    """Figures from each ``run.json``; ``devices``: run id -> the GPU it ran on."""
    by_slot: dict[str, list[tuple[float, float]]] = {}
    spans = []
    for run_id, device in devices.items():
        record = json.loads((runs_dir / run_id / "run.json").read_text("utf-8"))
        span = (record["started_at"], record["finished_at"])
        by_slot.setdefault(device, []).append(span)
        spans.append(span)
    gaps = [
        b[0] - a[1] for on_slot in by_slot.values() for a, b in itertools.pairwise(sorted(on_slot))
    ]
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    return Figures(
        wall=wall,
        gap=statistics.mean(gaps),
        run=statistics.mean(s[1] - s[0] for s in spans),
        first_start=first - submitted,
        concurrency=sum(s[1] - s[0] for s in spans) / (last - first),
    )


def run_local(folder: Path, plan: Path, slots: int) -> Figures:
    """The plan through the local GPU-slot scheduler."""
    runs_dir = folder / "runs-local"
    prepared = prepare_plan(plan, runs_dir=runs_dir, isolation="local")
    gpus = Slots(gpus=tuple(str(i) for i in range(slots)))
    started, submitted = time.perf_counter(), time.time()
    outcomes = run_scheduled(prepared, gpus, runs_dir=runs_dir, progress=False)
    wall = time.perf_counter() - started
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
    devices = {e["run_id"]: e["devices"] for e in read_schedule(runs_dir) if e["event"] == "end"}
    return figures(runs_dir, devices, submitted, wall)


def run_ray(folder: Path, plan: Path, slots: int) -> tuple[Figures, float, float]:
    """The plan through ``--executor ray``; also the cluster's start and the driver's connect."""
    cluster = LoopbackCluster(folder / "ray")
    started = time.perf_counter()
    cluster.start_head(gpus=slots, cpus=slots)
    try:
        cluster.wait_for(gpus=slots)
        up = time.perf_counter() - started
        ray = import_ray(cluster.address)
        started = time.perf_counter()
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        connect = time.perf_counter() - started
        try:
            runs_dir = folder / "runs-ray"
            prepared = prepare_plan(plan, runs_dir=runs_dir, isolation="local")
            options = RayOptions(address=cluster.address, poll_s=0.5)
            started, submitted = time.perf_counter(), time.time()
            outcomes = run_on_ray(prepared, runs_dir=runs_dir, options=options, say=lambda _: None)
            wall = time.perf_counter() - started
        finally:
            ray.shutdown()  # before the cluster goes: a driver left behind aborts the process
    finally:
        cluster.stop()
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
    starts = [e for e in read_events(runs_dir) if e["event"] == "start"]
    devices = {e["run_id"]: e["cuda_visible_devices"] for e in starts}
    return figures(runs_dir, devices, submitted, wall), up, connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    # A short folder: Ray's unix socket paths must stay under 107 characters.
    with tempfile.TemporaryDirectory(prefix="vb-", dir="/tmp") as tmp:
        folder = Path(tmp)
        plan, work = write_inputs(folder, args.runs)
        local = run_local(folder, plan, args.slots)
        on_ray, up, connect = run_ray(folder, plan, args.slots)
    ideal, mean_work = sum(work) / args.slots, sum(work) / args.runs
    print(f"{args.runs} echo runs over {args.slots} fake GPU slots; ideal {ideal:.2f} s")
    for name, got in (("local scheduler", local), ("ray executor", on_ray)):
        overhead = (got.wall - ideal) * args.slots / args.runs
        print(
            f"  {name:16s} wall {got.wall:6.2f} s  efficiency {ideal / got.wall:6.1%}  "
            f"overhead per run {overhead * 1000:5.0f} ms"
        )
        print(
            f"  {'':16s} first run started after {got.first_start:5.2f} s, "
            f"{got.concurrency:4.2f} runs at once on average, slot gap end->start "
            f"{got.gap * 1000:4.0f} ms, runner cost {(got.run - mean_work) * 1000:4.0f} ms a run"
        )
    print(f"  ray one-off: cluster start {up:.1f} s, driver connect {connect:.2f} s")
    print(f"  total time ratio ray / local {on_ray.wall / local.wall:.2f}")


if __name__ == "__main__":
    main()
