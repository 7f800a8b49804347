"""The metrics stage: scores a run folder inside the ``metrics`` venv.

Standard library plus rapidfuzz, numpy, pandas, pyarrow and sacrebleu only; never the
orchestrator (pydantic, click, rich, ``vlmhb.plan.plan_csv`` ...). Run it as
``python -m vlmhb.metrics RUN_DIR`` or call :func:`score_run`. A new metric is one function
decorated with :func:`metric` (see ``_text.py`` for the built-in ones).

Names are re-exported lazily: the orchestrator imports ``vlmhb.metrics._registry`` (standard
library only) for the metric directions without pulling in numpy or rapidfuzz.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "METRICS": "vlmhb.metrics._registry",
    "MetricSpec": "vlmhb.metrics._registry",
    "MetricValues": "vlmhb.metrics._registry",
    "metric": "vlmhb.metrics._registry",
    "resolve_metrics": "vlmhb.metrics._registry",
    "MetricsInputError": "vlmhb.metrics._errors",
    "RAW": "vlmhb.metrics._normalize",
    "Normalization": "vlmhb.metrics._normalize",
    "is_mixed_script": "vlmhb.metrics._normalize",
    "normalize_text": "vlmhb.metrics._normalize",
    "parse_document_answer": "vlmhb.metrics._document",
    "score_run": "vlmhb.metrics._score",
    "PairBatch": "vlmhb.metrics._text",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vlmhb.metrics' has no attribute {name!r}")
    for builtin in ("_text", "_validity"):  # registers the built-in metrics
        importlib.import_module(f"vlmhb.metrics.{builtin}")
    return getattr(importlib.import_module(module), name)
