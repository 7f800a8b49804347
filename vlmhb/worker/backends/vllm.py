"""The vLLM backend: an offline ``vllm.LLM`` engine, fed request by request (continuous batching).

Each request enters the engine the moment it arrives (``LLM.enqueue_chat``: vLLM's own chat
rendering, then ``LLMEngine.add_request``), and the worker steps the engine
(``LLMEngine.step``), returning each answer the moment it is finished, so the engine's
scheduler, not the worker, decides what runs together, up to ``max_num_seqs``. The load
option ``continuous: false`` falls back to one ``chat`` call per batch (``generate``).

Images are opened here (a bad one fails its own request only) and handed to vLLM as PIL
images (``image_pil`` chat parts), after the system prompt; the model's chat template renders
the rest. Greedy unless the generation parameters ask for sampling.

Load options (``init.load``), passed to ``LLM``: ``dtype``, ``max_model_len``,
``gpu_memory_utilization``, ``limit_mm_per_prompt`` (a dict, or an int meaning images),
``tensor_parallel_size``, ``enforce_eager``, ``kv_cache_memory_bytes``, ``trust_remote_code``,
``seed``, ``max_num_seqs``, ``mm_processor_kwargs`` (e.g. Qwen's ``min_pixels``/``max_pixels``;
``min_pixels``/``max_pixels`` at top level go there too), ``device`` (``auto`` | ``cpu`` |
``cuda``), ``log_tokens`` (write each answer's token ids to stderr, the worker log),
``continuous`` (default true).

On a host without CUDA (or ``device: cpu``) it runs vLLM's CPU build in-process, as DESIGN.md
found works: ``VLLM_TARGET_DEVICE=cpu``, ``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
``VLLM_CPU_OMP_THREADS_BIND=nobind``, ``distributed_executor_backend="uni"``, eager mode.
PyPI's torchvision is CUDA-linked and its ``_meta_registrations.py`` fails on a CPU torch;
``import_vllm`` guards that import instead of editing site-packages.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from vlmhb.worker.backends.base import Finished, LoadInfo, Result, package_versions
from vlmhb.worker.backends.chat import build_messages, merged_generation
from vlmhb.worker.protocol import Init, Request, Response

DEFAULT_MAX_NEW_TOKENS = 256
CPU_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
}
PASSED_TO_LLM = (
    "dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "enforce_eager",
    "kv_cache_memory_bytes",
    "trust_remote_code",
    "seed",
    "max_num_seqs",
    "distributed_executor_backend",
    "quantization",
    "revision",
)
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty", "seed", "stop")


def guard_torchvision(torch: Any) -> None:
    """Import torchvision with its fake-kernel registrations for missing C++ ops skipped.

    A CUDA-linked torchvision on a CPU torch has no ``torchvision::nms`` op, and two
    unguarded ``register_fake`` lines raise at import. They are skipped for the duration of
    the import (``torch.library.register_fake`` is restored after); nothing else changes.
    """
    original = torch.library.register_fake

    def tolerant(op: Any, func: Any = None, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(op, str) and op.startswith("torchvision::"):
            try:
                getattr(torch.ops.torchvision, op.split("::", 1)[1])
            except (AttributeError, RuntimeError):
                return func if func is not None else (lambda fn: fn)
        return original(op, func, *args, **kwargs)

    torch.library.register_fake = tolerant
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass  # vLLM imports it only for some models; a missing one is vLLM's to report
    finally:
        torch.library.register_fake = original


def import_vllm(on_cpu: bool) -> Any:
    """Set the CPU environment when needed, then import vllm (naming it if missing)."""
    if on_cpu:
        for key, value in CPU_ENV.items():
            os.environ.setdefault(key, value)
    try:
        import torch
    except ImportError as exc:
        raise RuntimeError(f"the vllm backend needs torch, missing in {sys.executable}") from exc
    guard_torchvision(torch)
    try:
        import vllm
    except ImportError as exc:
        raise RuntimeError(
            f"the vllm backend needs the 'vllm' package (vllm-cpu on a CPU host), not "
            f"importable in {sys.executable}: {exc}"
        ) from exc
    if on_cpu:
        inspect_models_in_process()
    return vllm


def inspect_models_in_process() -> None:
    """Let vLLM's model registry inspect model classes here, not in a fresh interpreter.

    vLLM inspects a model class in a subprocess only so that CUDA is not initialized in the
    parent; on the CPU there is no CUDA, and that subprocess would import torchvision without
    ``guard_torchvision`` and die.
    """
    from vllm.model_executor.models import registry

    if hasattr(registry, "_run_in_subprocess"):
        registry._run_in_subprocess = lambda fn: fn()


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (False if torch is missing: import_vllm says so)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def engine_kwargs(options: dict[str, Any], on_cpu: bool) -> dict[str, Any]:
    """The ``LLM(...)`` keyword arguments from the load options."""
    kwargs = {key: options[key] for key in PASSED_TO_LLM if options.get(key) is not None}
    limit = options.get("limit_mm_per_prompt")
    if isinstance(limit, int):
        limit = {"image": limit}
    if limit:
        kwargs["limit_mm_per_prompt"] = limit
    mm_kwargs = dict(options.get("mm_processor_kwargs") or {})
    for key in ("min_pixels", "max_pixels"):
        if options.get(key) is not None:
            mm_kwargs[key] = int(options[key])
    if mm_kwargs:
        kwargs["mm_processor_kwargs"] = mm_kwargs
    if on_cpu:
        kwargs.setdefault("distributed_executor_backend", "uni")
        kwargs.setdefault("enforce_eager", True)
    return kwargs


def pil_image_part(image: Any) -> dict[str, Any]:
    """A chat part carrying an opened PIL image."""
    return {"type": "image_pil", "image_pil": image}


class VLLMBackend:
    """One vLLM engine; requests enter it as they arrive and leave it as they finish."""

    default_batch_size = 64  # only for ``continuous: false``

    def __init__(self) -> None:
        self.llm: Any = None
        self.vllm: Any = None
        self.generation: dict[str, Any] = {}
        self.options: dict[str, Any] = {}
        self.continuous = True
        self._in_engine: dict[str, tuple[str, float]] = {}  # engine id -> (our id, submitted)

    def load(self, init: Init) -> LoadInfo:
        self.options = dict(init.load)
        self.continuous = bool(self.options.get("continuous", True))
        self.generation = dict(init.generation)
        device = str(self.options.get("device", "auto"))
        on_cpu = device == "cpu" or (device == "auto" and not cuda_available())
        self.vllm = import_vllm(on_cpu)
        kwargs = engine_kwargs(self.options, on_cpu)
        try:
            self.llm = self.vllm.LLM(model=init.model, **kwargs)
        except OSError as exc:
            from vlmhb.worker.backends.hf import describe_missing_model

            raise RuntimeError(describe_missing_model(init.model, exc)) from exc
        versions = package_versions("vllm", "vllm-cpu", "torch", "transformers", "torchvision")
        return LoadInfo(device="cpu" if on_cpu else describe_gpu(), versions=versions)

    def generate(self, batch: list[Request]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        chats, params, positions = [], [], []
        for index, request in enumerate(batch):
            try:
                chats.append(self.messages(request))
            except (ValueError, OSError) as exc:
                results[index] = f"{type(exc).__name__}: {exc}"
                continue
            params.append(self.sampling_params(merged_generation(self.generation, request)))
            positions.append(index)
        if chats:
            start = time.perf_counter()
            outputs = self.llm.chat(chats, params, use_tqdm=False)
            elapsed = time.perf_counter() - start
            for index, output in zip(positions, outputs, strict=True):
                results[index] = to_response(batch[index].id, output, elapsed)
                self._log_tokens(batch[index].id, output)
        return [r if r is not None else "no result" for r in results]

    # -- the continuous path ------------------------------------------------------------------

    def capacity(self) -> int:
        return int(self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs)

    def submit(self, request: Request) -> Result | None:
        try:
            chat = self.messages(request)
        except (ValueError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        params = self.sampling_params(merged_generation(self.generation, request))
        (engine_id,) = self.llm.enqueue_chat([chat], [params], use_tqdm=False)
        # Outputs carry the id before vLLM's random uniqueness suffix ("7-1a2b3c4d" -> "7").
        self._in_engine[engine_id.split("-", 1)[0]] = (request.id, time.perf_counter())
        return None

    def pending(self) -> int:
        return len(self._in_engine)

    def poll(self) -> list[Finished]:
        finished = []
        for output in self.llm.llm_engine.step():
            if not output.finished or output.request_id not in self._in_engine:
                continue
            request_id, submitted = self._in_engine.pop(output.request_id)
            finished.append(
                Finished(
                    request_id, to_response(request_id, output, time.perf_counter() - submitted)
                )
            )
            self._log_tokens(request_id, output)
        return finished

    def _log_tokens(self, request_id: str, output: Any) -> None:
        if self.options.get("log_tokens"):
            ids = list(output.outputs[0].token_ids)
            print(f"[vllm] tokens {request_id}: {ids}", file=sys.stderr, flush=True)

    def messages(self, request: Request) -> list[dict[str, Any]]:
        """The chat of one request with its images opened (raises on bad input)."""
        from PIL import Image, UnidentifiedImageError

        if not request.prompt.strip():
            raise ValueError("empty prompt")
        images: dict[str, Any] = {}
        for path in request.images:
            try:
                with Image.open(path) as image:
                    images[path] = image.convert("RGB")
            except (UnidentifiedImageError, OSError) as exc:
                raise ValueError(f"unreadable image {path}: {exc}") from exc
        return build_messages(request, lambda path: pil_image_part(images[path]))

    def sampling_params(self, params: dict[str, Any]) -> Any:
        """``SamplingParams`` from generation parameters: greedy unless temperature > 0."""
        max_new = params.get("max_new_tokens") or params.get("max_tokens")
        kwargs: dict[str, Any] = {"max_tokens": int(max_new or DEFAULT_MAX_NEW_TOKENS)}
        kwargs["temperature"] = float(params.get("temperature") or 0.0)
        for key in SAMPLING_KEYS[1:]:
            if params.get(key) is not None:
                kwargs[key] = params[key]
        return self.vllm.SamplingParams(**kwargs)

    def close(self) -> None:
        self.llm = None


def to_response(request_id: str, output: Any, elapsed: float) -> Response:
    """A protocol ``Response`` from one vLLM ``RequestOutput``."""
    completion = output.outputs[0]
    ttft = None
    metrics = getattr(output, "metrics", None)
    first = getattr(metrics, "first_token_latency", None)
    if isinstance(first, (int, float)) and first > 0:
        ttft = float(first)
    return Response(
        id=request_id,
        text=completion.text,
        latency_s=elapsed,
        prompt_tokens=len(output.prompt_token_ids or []),
        output_tokens=len(completion.token_ids),
        finish_reason=completion.finish_reason or "stop",
        ttft_s=ttft,
    )


def describe_gpu() -> str:
    """``cuda:0 (NVIDIA H100 …)``, or ``cuda`` when the name cannot be read."""
    try:
        import torch

        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    except (ImportError, RuntimeError):
        return "cuda"
