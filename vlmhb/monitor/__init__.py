"""Resource monitoring of a worker: process tree (psutil), GPUs (NVML), latency and throughput.

The only package in vlmhb that touches NVML. It runs on the orchestrator side:

* ``ResourceMonitor(pid, gpus, interval_s)``: samples from a daemon thread; ``snapshot()``,
  ``frame()``, ``write(run_dir)`` (``resources.parquet``), ``summary()`` (for ``run.json``);
* ``summarize_answers(records, generation_s, n_docs, energy_j)``: latency percentiles, tokens,
  throughput and energy per document from ``answers.jsonl`` lines;
* ``visible_gpus()`` and ``gpu_names()`` for the scheduler ([] without NVML or GPU).
"""

from __future__ import annotations

from vlmhb.monitor.gpu import gpu_names, visible_gpus
from vlmhb.monitor.sampler import RESOURCES_FILE, ResourceMonitor
from vlmhb.monitor.summary import summarize_answers, summarize_frame

__all__ = [
    "RESOURCES_FILE",
    "ResourceMonitor",
    "gpu_names",
    "summarize_answers",
    "summarize_frame",
    "visible_gpus",
]
