"""The metrics stage: scores a run folder inside the ``metrics`` venv.

Standard library plus rapidfuzz, numpy, pandas, pyarrow and sacrebleu only; never the
orchestrator (pydantic, click, rich, ``vlmhb.plan.plan_csv`` ...). Run it as
``python -m vlmhb.metrics RUN_DIR`` or call :func:`score_run`. A new metric is one function
decorated with :func:`metric` (see ``_text.py`` for the built-in ones).
"""

from __future__ import annotations

from vlmhb.metrics import _text, _validity  # noqa: F401  (register the built-in metrics)
from vlmhb.metrics._document import parse_document_answer
from vlmhb.metrics._errors import MetricsInputError
from vlmhb.metrics._normalize import RAW, Normalization, is_mixed_script, normalize_text
from vlmhb.metrics._registry import METRICS, MetricSpec, MetricValues, metric, resolve_metrics
from vlmhb.metrics._score import score_run
from vlmhb.metrics._text import PairBatch

__all__ = [
    "METRICS",
    "RAW",
    "MetricSpec",
    "MetricValues",
    "MetricsInputError",
    "Normalization",
    "PairBatch",
    "is_mixed_script",
    "metric",
    "normalize_text",
    "parse_document_answer",
    "resolve_metrics",
    "score_run",
]
