"""Serving figures of one run, from its streamed answer lines: throughput and latency percentiles.

Only answers that carry ``started_at`` (written by the streaming backends: ``openai``,
``vllm-server``, ``sglang-server``) count; a run without any gets no serving figures.
Throughput divides by the load window: the time during which at least one request was in
flight (the union of the requests' [sent, answered] intervals), so neither server start-up
nor the gap before a resumed attempt counts against it. Percentiles use numpy's default
(linear interpolation).

Keys (all seconds unless named otherwise): ``concurrency, serving_requests, serving_errors,
serving_window_s, req_per_s, output_tok_per_s, ttft_p50_s, ttft_p95_s, ttft_p99_s,
itl_p50_s, itl_p95_s, e2e_p50_s, e2e_p95_s, e2e_p99_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vlmhb.seen_ids import SeenIds

PERCENTILES = {"ttft": (50, 95, 99), "itl": (50, 95), "e2e": (50, 95, 99)}
# Which way is better for the serving figures (the gate reads them from run.json's resources).
_HIGHER_IS_BETTER = {"req_per_s": True, "output_tok_per_s": True, "serving_errors": False}


def serving_higher_is_better(name: str) -> bool | None:
    """Whether a higher serving figure is better (``ttft_p95`` as ``ttft_p95_s``); None: not one."""
    if name in _HIGHER_IS_BETTER:
        return _HIGHER_IS_BETTER[name]
    if name.split("_", 1)[0] in PERCENTILES:  # ttft_p95, itl_p50_s, e2e_p99: latencies
        return False
    return None


def serving_summary(
    records: Iterable[Mapping[str, Any]], concurrency: int | None = None
) -> dict[str, Any]:
    """The serving figures of a run's answer lines ({} when none was streamed)."""
    import numpy as np

    seen = SeenIds()
    timed: list[Mapping[str, Any]] = []  # only streamed answers: a batch run keeps none
    errors = 0
    for record in records:
        if not seen.add(str(record.get("id"))):
            continue
        if record.get("error"):
            errors += 1
        elif record.get("started_at") is not None and record.get("latency_s") is not None:
            timed.append(record)
    if not timed:
        return {}
    window = busy_seconds(
        [(float(r["started_at"]), float(r["started_at"]) + float(r["latency_s"])) for r in timed]
    )
    tokens = sum(int(r.get("output_tokens") or 0) for r in timed)
    series = {
        "ttft": np.array([r["ttft_s"] for r in timed if r.get("ttft_s") is not None], float),
        "itl": np.array([gap for r in timed for gap in (r.get("itl_s") or [])], float),
        "e2e": np.array([r["latency_s"] for r in timed], float),
    }
    summary: dict[str, Any] = {
        "concurrency": concurrency,
        "serving_requests": len(timed) + errors,
        "serving_errors": errors,
        "serving_window_s": round(window, 4),
        "req_per_s": len(timed) / window if window > 0 else None,
        "output_tok_per_s": tokens / window if window > 0 else None,
    }
    for name, quantiles in PERCENTILES.items():
        values = series[name]
        for q in quantiles:
            key = f"{name}_p{q}_s"
            summary[key] = float(np.percentile(values, q)) if values.size else None
    return summary


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total
