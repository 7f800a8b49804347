"""vlmhb: a benchmark runner for vision-language models reading Russian documents.

This package root stays standard-library only: the worker (``vlmhb.worker``) and the
metrics stage (``vlmhb.metrics``) import it from inside model and metrics venvs where
pandas, pydantic and click are deliberately absent. The Python API is re-exported lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0.dev0"

_API = {
    "run_plan": "vlmhb.api",
    "load_plan": "vlmhb.plan.plan_csv",
    "VlmhbError": "vlmhb.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vlmhb' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
