"""Load sweeps: one plan row asked at several concurrency levels becomes one run per level.

A row's ``concurrency`` column (``8``, or ``1,4,16,64`` for a sweep) or the CLI's
``--concurrency 1,4,16,64`` (which applies to every row with a streaming backend) sets how
many requests the backend keeps in flight. Each level is a run of its own over the same
requests: ``load.concurrency`` is part of the run's identity, so every level has its own
folder and resumes on its own. The worker hands the backend at least ``4 × level`` requests
at a time, so the level, not ``batch_size``, is what the server sees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vlmhb.errors import PlanError, Problem, VlmhbError
from vlmhb.plan.plan_csv import EvalRun

STREAMING_BACKENDS = frozenset({"openai", "vllm-server", "sglang-server"})
BATCHES_PER_LEVEL = 4


def parse_levels(text: str) -> tuple[int, ...]:
    """``1,4,16,64`` -> ``(1, 4, 16, 64)``; ``VlmhbError`` for anything but positive integers."""
    levels: list[int] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise VlmhbError(f"--concurrency {text!r}: {part!r} is not a positive integer")
        if int(part) not in levels:
            levels.append(int(part))
    if not levels:
        raise VlmhbError(f"--concurrency {text!r}: no level given")
    return tuple(levels)


def at_level(run: EvalRun, level: int, swept: bool) -> EvalRun:
    """The row asked at one concurrency level (named after it when part of a sweep)."""
    changes: dict[str, object] = {
        "concurrency": (level,),
        "load": {**run.load, "concurrency": level},
        "batch_size": max(run.batch_size or 0, BATCHES_PER_LEVEL * level),
    }
    if swept:
        changes["name"] = f"{run.label} c={level}"
    return run.model_copy(update=changes)


def _problem(run: EvalRun, column: str, message: str) -> Problem | None:
    if not run.concurrency or run.backend in STREAMING_BACKENDS:
        return None
    file, _, row = run.source.rpartition(":")
    return Problem(
        file or run.source,
        int(row) if row.isdigit() else None,
        column,
        f"backend {run.backend!r} has no concurrency; {message} "
        f"({', '.join(sorted(STREAMING_BACKENDS))})",
    )


def expand_sweeps(runs: Sequence[EvalRun], levels: Sequence[int] | None = None) -> list[EvalRun]:
    """Each row at each of its levels: ``levels`` (the CLI's) for streaming rows, else its own."""
    expanded: list[EvalRun] = []
    matched = False
    problems = [_problem(run, "concurrency", "only streaming backends take it") for run in runs]
    if any(problems):
        raise PlanError([problem for problem in problems if problem is not None])
    for run in runs:
        wanted = tuple(run.concurrency)
        if levels and run.backend in STREAMING_BACKENDS:
            wanted, matched = tuple(levels), True
        if not wanted:
            expanded.append(run)
            continue
        expanded.extend(at_level(run, level, len(wanted) > 1) for level in wanted)
    if levels and not matched:
        raise VlmhbError(
            "--concurrency applies to rows with backend "
            f"{', '.join(sorted(STREAMING_BACKENDS))}; the plan has none"
        )
    return expanded


_NOT_IDENTITY = ("name", "concurrency", "batch_size", "source", "base_dir")


def sweep_key(record: dict[str, Any]) -> str:
    """What the levels of one sweep share, from a ``run.json`` dict: all but the level."""
    row = {k: v for k, v in (record.get("plan_row") or {}).items() if k not in _NOT_IDENTITY}
    row["load"] = {k: v for k, v in (row.get("load") or {}).items() if k != "concurrency"}
    row["dataset_hash"] = record.get("dataset_hash")
    row["prompts_hash"] = record.get("prompts_hash")
    return json.dumps(row, sort_keys=True, default=str)


def run_level(record: dict[str, Any]) -> int | None:
    """The concurrency level a run was asked at (``load.concurrency``), or None."""
    level = ((record.get("plan_row") or {}).get("load") or {}).get("concurrency")
    return int(level) if isinstance(level, int | float) else None
