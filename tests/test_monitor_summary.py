"""Summaries checked against numbers computed by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from vlmhb.monitor import summarize_answers, summarize_frame

NAN = math.nan


def two_gpu_frame() -> pd.DataFrame:
    """Four ticks, two GPUs; GPU 1 does not report process memory, GPU 0 is lost at the end."""
    return pd.DataFrame(
        {
            "t": [0.0, 0.1, 0.2, 0.3],
            "rss_mb": [100.0, 300.0, 200.0, NAN],
            "cpu_pct": [50.0, 150.0, 100.0, NAN],
            "threads": [4.0, 9.0, 9.0, NAN],
            "host_ram_used_mb": [1000.0, 1300.0, 1200.0, 1100.0],
            "gpu0_mem_used_mb": [1000.0, 5000.0, 6000.0, NAN],
            "gpu0_proc_mem_mb": [0.0, 4000.0, 5000.0, NAN],
            "gpu0_sm_util": [0.0, 80.0, 100.0, NAN],
            "gpu0_mem_util": [0.0, 20.0, 40.0, NAN],
            "gpu0_power_w": [100.0, 300.0, 400.0, NAN],
            "gpu0_energy_j": [0.0, 20.0, 55.0, NAN],
            "gpu1_mem_used_mb": [500.0, 500.0, 500.0, 500.0],
            "gpu1_proc_mem_mb": [NAN, NAN, NAN, NAN],
            "gpu1_sm_util": [0.0, 0.0, 20.0, 20.0],
            "gpu1_mem_util": [0.0, 0.0, 0.0, 0.0],
            "gpu1_power_w": [50.0, 50.0, 70.0, 70.0],
            "gpu1_energy_j": [0.0, 5.0, 11.0, 18.0],
        }
    )


def test_frame_summary_by_hand() -> None:
    summary = summarize_frame(
        two_gpu_frame(),
        interval_s=0.1,
        gpu_status="GPU lost at t=0.3s",
        energy_sources={0: "counter", 1: "power"},
    )
    expected = {
        "samples": 4,
        "interval_s": 0.1,
        "duration_s": 0.3,
        "gpu_status": "GPU lost at t=0.3s",
        "rss_peak_mb": 300.0,
        "rss_mean_mb": 200.0,  # (100 + 300 + 200) / 3, the NaN tick left out
        "cpu_mean_pct": 100.0,
        "threads_peak": 9.0,
        "host_ram_peak_mb": 1300.0,
        "vram_peak_mb": 6500.0,  # 6000 + 500
        "vram_mean_mb": 3500.0,  # (1500 + 5500 + 6500 + 500) / 4
        "vram_proc_peak_mb": 5000.0,  # GPU 1 never says
        "sm_util_mean_pct": 30.0,  # tick means 0, 40, 60, 20 (GPU 0 unknown) -> 120 / 4
        "mem_util_mean_pct": 7.5,  # 0, 10, 20, 0
        "power_mean_w": 260.0,  # 150, 350, 470, 70 (GPU 0 unknown) -> 1040 / 4
        "energy_j": 73.0,  # GPU 0's last known 55 + GPU 1's 18
        "energy_source": "counter+power",
    }
    assert summary.pop("gpus") == [0, 1]
    assert summary == pytest.approx(expected)
    json.dumps(summary)  # JSON-ready: no numpy scalars, no NaN


def test_frame_summary_without_gpus() -> None:
    frame = two_gpu_frame()[["t", "rss_mb", "cpu_pct", "threads", "host_ram_used_mb"]]
    summary = summarize_frame(frame, interval_s=0.1, gpu_status="no NVML library")
    assert summary["gpus"] == []
    for key in ("vram_peak_mb", "vram_mean_mb", "sm_util_mean_pct", "energy_j", "energy_source"):
        assert summary[key] is None
    empty = summarize_frame(frame.iloc[0:0], interval_s=0.1, gpu_status="no GPU")
    assert empty["samples"] == 0 and empty["rss_peak_mb"] is None
    json.dumps(empty)


def answer(sample_id: str, latency: float | None, **extra: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": sample_id,
        "latency_s": latency,
        "prompt_tokens": 100,
        "output_tokens": 10,
        "ttft_s": None,
        "error": None,
    }
    record.update(extra)
    return record


def test_answer_summary_by_hand() -> None:
    records = [
        answer("a:1", 0.1, ttft_s=0.05),
        answer("a:2", 0.4, output_tokens=30),
        answer("a:2", 9.9),  # a resumed run's duplicate: the first line counts
        answer("b:1", 0.2, ttft_s=0.07),
        answer("b:2", 0.3),
        answer("b:3", 5.0, error="timeout", output_tokens=None, prompt_tokens=None),
    ]
    summary = summarize_answers(iter(records), generation_s=2.0, n_docs=2, energy_j=100.0)
    # latencies of the four successes sorted: 0.1 0.2 0.3 0.4; linear interpolation:
    # p50 at rank 1.5 -> 0.25; p95 at rank 2.85 -> 0.385; p99 at rank 2.97 -> 0.397
    assert summary == pytest.approx(
        {
            "n_samples": 5,
            "n_errors": 1,
            "n_docs": 2,
            "generation_s": 2.0,
            "latency_p50_s": 0.25,
            "latency_p95_s": 0.385,
            "latency_p99_s": 0.397,
            "latency_mean_s": 0.25,
            "ttft_p50_s": 0.06,
            "prompt_tokens_total": 400,
            "output_tokens_total": 60,  # 10 + 30 + 10 + 10
            "output_tokens_per_s": 30.0,
            "samples_per_s": 2.5,
            "docs_per_s": 1.0,
            "energy_per_doc_j": 50.0,
        }
    )
    json.dumps(summary)


def test_answer_summary_of_nothing() -> None:
    summary = summarize_answers([], generation_s=0.0, n_docs=0)
    assert summary["n_samples"] == 0 and summary["n_errors"] == 0
    for key in ("latency_p50_s", "ttft_p50_s", "output_tokens_total", "samples_per_s"):
        assert summary[key] is None
    assert summary["energy_per_doc_j"] is None
