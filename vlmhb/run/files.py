"""The names of the files in a run folder: the one place they are written down.

Standard library only (constants): the orchestrator, the metrics stage (inside the metrics
venv), the report and the executors all read run folders through these names.
"""

from __future__ import annotations

RUN_JSON = "run.json"
ANSWERS = "answers.jsonl"
ANSWERS_CSV = "answers.csv"
REFERENCES = "references.jsonl"
WORKER_LOG = "worker.log"
RESOURCES = "resources.parquet"
METRICS_DIR = "metrics"
WRITER_LOCK = ".writer.lock"  # held by the one process writing the folder (vlmhb.run.lock)
WRITER_OWNER = ".writer.json"  # who holds it: pid, host, since
METRICS_JSON = "metrics.json"
# The metric tables inside METRICS_DIR, each written as ``<name>.parquet`` and ``<name>.csv``.
BY_SAMPLE = "by_sample"
BY_FIELD = "by_field"
BY_DOC_TYPE = "by_doc_type"
BY_TAG = "by_tag"
OVERALL = "overall"
METRIC_TABLES = (BY_SAMPLE, BY_FIELD, BY_DOC_TYPE, BY_TAG, OVERALL)
OVERALL_CSV = f"{OVERALL}.csv"


def metrics_table(name: str, suffix: str = "parquet") -> str:
    """The path of a metric table inside the run folder, e.g. ``metrics/by_sample.parquet``."""
    return f"{METRICS_DIR}/{name}.{suffix}"
