"""Summaries for ``run.json``: of the resource time series, and of the answer lines.

Both return plain JSON-ready dicts (Python floats and ints, None for what is unknown).
Percentiles use numpy's default (linear interpolation between the closest ranks).
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vlmhb.seen_ids import SeenIds

if TYPE_CHECKING:
    import pandas as pd

_GPU_COLUMN = re.compile(r"^gpu(\d+)_(\w+)$")


def summarize_frame(
    frame: pd.DataFrame,
    *,
    interval_s: float,
    gpu_status: str,
    energy_sources: Mapping[int, str | None] | None = None,
) -> dict[str, Any]:
    """Peak and mean RSS and VRAM, mean utilization, power and total energy of a time series.

    VRAM is the sum over the watched GPUs of device memory in use (``vram_*``) and of the
    worker's own (``vram_proc_*``, where NVML reports processes). ``energy_j`` sums each GPU's
    last known cumulative energy.
    """
    gpus = gpu_indices(frame.columns)
    summary: dict[str, Any] = {
        "samples": len(frame),
        "interval_s": interval_s,
        "duration_s": _number(frame["t"].max()) if len(frame) else None,
        "gpu_status": gpu_status,
        "gpus": gpus,
        "rss_peak_mb": _number(frame["rss_mb"].max()),
        "rss_mean_mb": _number(frame["rss_mb"].mean()),
        "cpu_mean_pct": _number(frame["cpu_pct"].mean()),
        "threads_peak": _number(frame["threads"].max()),
        "host_ram_peak_mb": _number(frame["host_ram_used_mb"].max()),
    }
    vram = _sum_over_gpus(frame, gpus, "mem_used_mb")
    vram_proc = _sum_over_gpus(frame, gpus, "proc_mem_mb")
    power = _sum_over_gpus(frame, gpus, "power_w")
    sm_util = frame[[f"gpu{i}_sm_util" for i in gpus]].mean(axis=1) if gpus else None
    mem_util = frame[[f"gpu{i}_mem_util" for i in gpus]].mean(axis=1) if gpus else None
    energies = [frame[f"gpu{i}_energy_j"].dropna() for i in gpus]
    known = [float(e.iloc[-1]) for e in energies if len(e)]
    sources = sorted({s for s in (energy_sources or {}).values() if s})
    summary.update(
        {
            "vram_peak_mb": _number(vram.max()) if vram is not None else None,
            "vram_mean_mb": _number(vram.mean()) if vram is not None else None,
            "vram_proc_peak_mb": _number(vram_proc.max()) if vram_proc is not None else None,
            "sm_util_mean_pct": _number(sm_util.mean()) if sm_util is not None else None,
            "mem_util_mean_pct": _number(mem_util.mean()) if mem_util is not None else None,
            "power_mean_w": _number(power.mean()) if power is not None else None,
            "energy_j": sum(known) if known else None,
            "energy_source": "+".join(sources) or None,
        }
    )
    return summary


def summarize_answers(
    records: Iterable[Mapping[str, Any]],
    generation_s: float,
    n_docs: int,
    energy_j: float | None = None,
) -> dict[str, Any]:
    """Latency, tokens and throughput of one run's answer lines (``answers.jsonl`` dicts).

    Streams ``records`` (memory holds a digest of each id and one float per answer, not the
    lines).
    A repeated ``id`` counts once (its first line, as the readers of ``answers.jsonl`` do).
    Latency percentiles cover the samples that succeeded; throughput divides by
    ``generation_s`` (first request sent to last answer received: worker start, model load
    and teardown are not generation). ``energy_per_doc_j`` needs ``energy_j``.
    """
    import numpy as np

    seen = SeenIds()
    latency, ttft = array("d"), array("d")
    n_samples = n_errors = 0
    tokens: dict[str, int | None] = {"prompt_tokens": None, "output_tokens": None}
    for record in records:
        key = record.get("id")
        if key is not None and not seen.add(str(key)):
            continue
        n_samples += 1
        for name, total in tokens.items():
            if record.get(name) is not None:
                tokens[name] = (total or 0) + int(record[name])
        if record.get("error"):
            n_errors += 1
            continue
        if record.get("latency_s") is not None:
            latency.append(record["latency_s"])
        if record.get("ttft_s") is not None:
            ttft.append(record["ttft_s"])
    del seen
    latencies, ttfts = np.frombuffer(latency), np.frombuffer(ttft)

    def percentile(values: np.ndarray, q: float) -> float | None:
        return float(np.percentile(values, q)) if values.size else None

    def per_second(amount: float | None) -> float | None:
        return amount / generation_s if amount is not None and generation_s > 0 else None

    output_tokens = tokens["output_tokens"]
    return {
        "n_samples": n_samples,
        "n_errors": n_errors,
        "n_docs": n_docs,
        "generation_s": generation_s,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_p99_s": percentile(latencies, 99),
        "latency_mean_s": float(latencies.mean()) if latencies.size else None,
        "ttft_p50_s": percentile(ttfts, 50),
        "prompt_tokens_total": tokens["prompt_tokens"],
        "output_tokens_total": output_tokens,
        "output_tokens_per_s": per_second(output_tokens),
        "samples_per_s": per_second(n_samples),
        "docs_per_s": per_second(n_docs),
        "energy_per_doc_j": energy_per_doc(energy_j, n_docs),
    }


def energy_per_doc(energy_j: float | None, n_docs: int) -> float | None:
    """Joules per document (None without an energy reading or documents)."""
    return energy_j / n_docs if energy_j is not None and n_docs > 0 else None


def gpu_indices(columns: Iterable[str]) -> list[int]:
    """GPU indices named by ``gpu{i}_*`` columns, in order of first appearance."""
    found: list[int] = []
    for name in columns:
        match = _GPU_COLUMN.match(str(name))
        if match and int(match.group(1)) not in found:
            found.append(int(match.group(1)))
    return found


def _sum_over_gpus(frame: pd.DataFrame, gpus: Sequence[int], column: str) -> pd.Series | None:
    """Per-tick sum over GPUs; NaN where no GPU knows; None when no GPU ever did."""
    if not gpus:
        return None
    part = frame[[f"gpu{i}_{column}" for i in gpus]]
    if part.isna().all().all():
        return None
    return part.sum(axis=1, min_count=1)


def _number(value: Any) -> float | None:
    """A JSON-ready float, None for NaN or missing."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
