"""Where a run's time went: the phases ``run.json`` records under ``timings``.

``env_prepare_s`` (resolve or build the model env, build a local test model), then
``worker_start_s`` (spawn to ``ready``, every start summed; ``load_s`` is the worker's own
model load inside it), ``ttfa_s`` (first request sent to first answer received),
``generation_s`` (first request sent to last answer received, less any restart's load) and
``teardown_s`` (stopping the worker). ``wall_s`` is the whole infer stage. Throughput
(samples/s, tokens/s) is computed over ``generation_s`` only.
"""

from __future__ import annotations

from typing import Any

from vlmhb.run.dispatch import DispatchStats

PHASES = ("env_prepare_s", "worker_start_s", "load_s", "ttfa_s", "generation_s", "teardown_s")


def run_timings(stats: DispatchStats, env_prepare_s: float, wall_s: float) -> dict[str, Any]:
    """The ``timings`` section of ``run.json`` for one infer attempt."""
    load_s = sum(ready.load_s for ready in stats.ready) if stats.ready else None
    values = {
        "env_prepare_s": env_prepare_s,
        "worker_start_s": stats.worker_start_s if stats.ready else None,
        "load_s": load_s,
        "ttfa_s": stats.time_to_first_answer_s,
        "generation_s": stats.generation_s,
        "teardown_s": stats.teardown_s if stats.ready else None,
        "wall_s": wall_s,
    }
    return {key: None if value is None else round(value, 4) for key, value in values.items()}
