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
from pathlib import Path

from scheduler import write_inputs

from vlmhb.executors.local import Slots, read_schedule, run_scheduled
from vlmhb.executors.ray import RayOptions, import_ray, read_events, run_on_ray
from vlmhb.executors.ray_local import LoopbackCluster
from vlmhb.run.prepare import prepare_plan

Figures = tuple[float, float, float]  # wall, mean slot gap, mean run time (seconds)


def slot_figures(runs_dir: Path, devices: dict[str, str]) -> tuple[float, float]:
    """(mean gap between one run's end and the next start on the same GPU, mean run time),
    from each ``run.json``; ``devices``: run id -> the GPU it ran on."""
    by_slot: dict[str, list[tuple[float, float]]] = {}
    times = []
    for run_id, device in devices.items():
        record = json.loads((runs_dir / run_id / "run.json").read_text("utf-8"))
        span = (record["started_at"], record["finished_at"])
        by_slot.setdefault(device, []).append(span)
        times.append(span[1] - span[0])
    gaps = [b[0] - a[1] for spans in by_slot.values() for a, b in itertools.pairwise(sorted(spans))]
    return statistics.mean(gaps), statistics.mean(times)


def run_local(folder: Path, plan: Path, slots: int) -> Figures:
    """(wall, slot gap, run time) seconds of the plan through the local GPU-slot scheduler."""
    runs_dir = folder / "runs-local"
    prepared = prepare_plan(plan, runs_dir=runs_dir, isolation="local")
    started = time.perf_counter()
    outcomes = run_scheduled(
        prepared, Slots(gpus=tuple(str(i) for i in range(slots))), runs_dir=runs_dir, progress=False
    )
    wall = time.perf_counter() - started
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
    devices = {e["run_id"]: e["devices"] for e in read_schedule(runs_dir) if e["event"] == "end"}
    return wall, *slot_figures(runs_dir, devices)


def run_ray(folder: Path, plan: Path, slots: int) -> tuple[Figures, float, float]:
    """(figures, cluster start, driver connect) seconds through ``--executor ray``."""
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
            started = time.perf_counter()
            outcomes = run_on_ray(prepared, runs_dir=runs_dir, options=options, say=print)
            wall = time.perf_counter() - started
        finally:
            ray.shutdown()  # before the cluster goes: a driver left behind aborts the process
    finally:
        cluster.stop()
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
    starts = read_events(runs_dir)
    devices = {e["run_id"]: e["cuda_visible_devices"] for e in starts if e["event"] == "start"}
    return (wall, *slot_figures(runs_dir, devices)), up, connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    # A short folder: Ray's unix socket paths must stay under 107 characters.
    with tempfile.TemporaryDirectory(prefix="vb-", dir="/tmp") as tmp:
        folder = Path(tmp)
        plan, work = write_inputs(folder, args.runs)
        ideal = sum(work) / args.slots
        local = run_local(folder, plan, args.slots)
        ray_figures, up, connect = run_ray(folder, plan, args.slots)
    mean_work = sum(work) / args.runs
    print(f"{args.runs} echo runs over {args.slots} fake GPU slots; ideal {ideal:.2f} s")
    for name, (wall, gap, run_s) in (("local scheduler", local), ("ray executor", ray_figures)):
        overhead = (wall - ideal) * args.slots / args.runs
        print(
            f"  {name:16s} wall {wall:7.2f} s  efficiency {ideal / wall:6.1%}  "
            f"overhead per run {overhead * 1000:6.0f} ms  (slot gap end->start "
            f"{gap * 1000:5.0f} ms, runner cost {(run_s - mean_work) * 1000:5.0f} ms)"
        )
    print(f"  ray one-off: cluster start {up:.1f} s, driver connect {connect:.2f} s")
    print(f"  total time ratio ray / local {ray_figures[0] / local[0]:.2f}")


if __name__ == "__main__":
    main()
