"""Datasets: the native format, VLMHyperBench v0.1 and imagefolder readers, the synthetic generator.

Names are re-exported lazily so that light modules (``vlmhb.data.synth.fields``) import
without pulling in pydantic or Pillow.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Dataset": "vlmhb.data.documents",
    "Document": "vlmhb.data.documents",
    "vlmhb_home": "vlmhb.home",
    "load_dataset": "vlmhb.data.load",
    "check_dataset": "vlmhb.data.load",
    "resolve_spec": "vlmhb.data.load",
    "read_vlm_base": "vlmhb.data.v01",
    "V01Model": "vlmhb.data.v01",
    "import_v01": "vlmhb.data.convert",
    "write_native": "vlmhb.data.native",
    "synthesize": "vlmhb.data.synth.generate",
    "SynthConfig": "vlmhb.data.synth.generate",
    "ensure_demo": "vlmhb.data.demo",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vlmhb.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
