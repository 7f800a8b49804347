"""The backend table: name -> ``module:Class``, imported only when asked for.

A backend module imports its heavy packages inside ``load`` so that a missing package
becomes a clear ``fatal`` naming it, not an import crash.
"""

from __future__ import annotations

import importlib

from vlmhb.worker.backends.base import Backend

BACKENDS: dict[str, str] = {
    "echo": "vlmhb.worker.backends.echo:EchoBackend",
    "tesseract": "vlmhb.worker.backends.tesseract:TesseractBackend",
    "hf": "vlmhb.worker.backends.hf:HFBackend",
    "vllm": "vlmhb.worker.backends.vllm:VLLMBackend",
    "sglang": "vlmhb.worker.backends.sglang:SGLangBackend",
    "openai": "vlmhb.worker.backends.openai:OpenAIBackend",
    "vllm-server": "vlmhb.worker.backends.served:VLLMServerBackend",
    "sglang-server": "vlmhb.worker.backends.served:SGLangServerBackend",
}


def load_backend(name: str) -> Backend:
    """Instantiate the backend registered under ``name``."""
    target = BACKENDS.get(name)
    if target is None:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()
