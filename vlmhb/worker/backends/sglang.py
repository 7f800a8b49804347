"""The ``sglang`` backend: SGLang's offline ``Engine``, fed request by request (continuous).

Each request becomes one ``Engine.async_generate`` task the moment it arrives
(``async_engine.AsyncRequests``), so SGLang's scheduler batches continuously and each answer
leaves the worker when it is done; ``capacity`` is the engine's ``max_running_requests``
(the load option of that name, else 128). ``continuous: false`` falls back to one
``generate`` call per batch.

SGLang has no CPU path (hard CUDA requirements), so what can be checked without a GPU lives
in pure functions: ``engine_kwargs`` (load options → ``Engine(...)``), ``sampling_params``,
``build_inputs`` (requests → prompts + image data) and ``map_output`` (SGLang's output dict →
``Response``). ``SGLangBackend`` only wires them to the engine.

Load options (``init.load``): ``tp_size`` (1), ``mem_fraction_static``, ``context_length``,
``dtype``, ``trust_remote_code``, ``chat_template`` (a Jinja string overriding the
processor's), ``engine_args`` (a dict passed to ``Engine`` as is). The prompt is the model's
chat template applied by its Hugging Face processor to ``chat.build_messages``; images go to
SGLang as file paths. Greedy decoding unless a temperature is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vlmhb.worker.backends.async_engine import AsyncRequests
from vlmhb.worker.backends.base import Finished, LoadInfo, Result, check_image, package_versions
from vlmhb.worker.backends.chat import Message, build_messages, merged_generation
from vlmhb.worker.protocol import Init, Request, Response

DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_CAPACITY = 128
_ENGINE_OPTIONS = (
    "tp_size",
    "mem_fraction_static",
    "context_length",
    "dtype",
    "trust_remote_code",
    "max_running_requests",
    "revision",
)
_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "stop", "repetition_penalty")

Render = Callable[[list[Message]], str]


def engine_kwargs(init: Init) -> dict[str, Any]:
    """Keyword arguments of ``sglang.Engine`` for this init."""
    kwargs: dict[str, Any] = {"model_path": init.model, "log_level": "error"}
    for key in _ENGINE_OPTIONS:
        if init.load.get(key) is not None:
            kwargs[key] = init.load[key]
    extra = init.load.get("engine_args") or {}
    if not isinstance(extra, dict):
        raise ValueError("sglang backend: engine_args must be a JSON object")
    kwargs.update(extra)
    return kwargs


def sampling_params(generation: dict[str, Any]) -> dict[str, Any]:
    """SGLang sampling params from vlmhb generation options (greedy, 512 new tokens by default)."""
    params: dict[str, Any] = {
        "max_new_tokens": int(generation.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
        "temperature": 0.0,
    }
    if generation.get("do_sample") and generation.get("temperature") is None:
        params["temperature"] = 1.0
    for key in _SAMPLING_KEYS:
        if generation.get(key) is not None:
            params[key] = generation[key]
    return params


def build_inputs(
    batch: list[Request], render: Render, defaults: dict[str, Any]
) -> tuple[list[str], list[list[str] | None] | None, list[dict[str, Any]]]:
    """Prompts, image data and sampling params, one of each per request.

    Image data is one list of paths per prompt (``None`` for a prompt without images), or
    ``None`` altogether when no request has images.
    """
    prompts = [render(build_messages(request)) for request in batch]
    params = [sampling_params(merged_generation(defaults, request)) for request in batch]
    images: list[list[str] | None] = [list(request.images) or None for request in batch]
    return prompts, (images if any(images) else None), params


def map_output(request_id: str, output: dict[str, Any], latency_s: float = 0.0) -> Result:
    """One SGLang output dict (``text`` + ``meta_info``) as a ``Response``, or an error text."""
    meta = output.get("meta_info") or {}
    finish = meta.get("finish_reason")
    kind = finish.get("type") if isinstance(finish, dict) else finish
    if kind == "abort":
        message = finish.get("message") if isinstance(finish, dict) else None
        return f"sglang aborted {request_id}: {message or 'no reason given'}"
    return Response(
        id=request_id,
        text=str(output.get("text", "")),
        latency_s=float(meta.get("e2e_latency") or latency_s),
        prompt_tokens=meta.get("prompt_tokens"),
        output_tokens=meta.get("completion_tokens"),
        finish_reason={"stop": "stop", "length": "length"}.get(str(kind), kind),
    )


class SGLangBackend:
    """The offline SGLang engine; requests enter it as they arrive, leave it as they finish."""

    default_batch_size = 64  # only for ``continuous: false``

    def __init__(self) -> None:
        self.engine: Any = None
        self.render: Render | None = None
        self.defaults: dict[str, Any] = {}
        self.continuous = True
        self.max_running = DEFAULT_CAPACITY
        self._requests: AsyncRequests | None = None

    def load(self, init: Init) -> LoadInfo:
        try:
            import sglang
            from transformers import AutoProcessor
        except ImportError as exc:
            raise RuntimeError(
                "sglang backend needs the packages sglang and transformers in its env "
                f"({exc.name} is missing)"
            ) from None
        processor = AutoProcessor.from_pretrained(
            init.model, trust_remote_code=bool(init.load.get("trust_remote_code", False))
        )
        template = init.load.get("chat_template")

        def render(messages: list[Message]) -> str:
            return processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, chat_template=template
            )

        self.render = render
        self.defaults = dict(init.generation)
        self.continuous = bool(init.load.get("continuous", True))
        self.engine = sglang.Engine(**engine_kwargs(init))
        self.start_requests(init)
        versions = package_versions("sglang", "torch", "transformers", "flashinfer-python")
        return LoadInfo(device=f"cuda x{int(init.load.get('tp_size', 1))}", versions=versions)

    def start_requests(self, init: Init) -> None:
        """The event-loop driver and the capacity, once ``engine`` is set."""
        args = getattr(self.engine, "server_args", None)
        self.max_running = int(
            init.load.get("max_running_requests")
            or getattr(args, "max_running_requests", None)
            or DEFAULT_CAPACITY
        )
        self._requests = AsyncRequests()

    # -- the continuous path ------------------------------------------------------------------

    def capacity(self) -> int:
        return self.max_running

    def submit(self, request: Request) -> Result | None:
        assert self._requests is not None and self.render is not None, "load() first"
        try:
            for image in request.images:
                check_image(image)
        except ValueError as exc:
            return exc
        prompts, images, params = build_inputs([request], self.render, self.defaults)
        call = self.engine.async_generate(
            prompt=prompts[0],
            image_data=images[0] if images else None,
            sampling_params=params[0],
        )
        self._requests.submit(request.id, call, map_output)
        return None

    def pending(self) -> int:
        return self._requests.pending() if self._requests else 0

    def poll(self) -> list[Finished]:
        assert self._requests is not None, "load() first"
        return self._requests.poll()

    def generate(self, batch: list[Request]) -> list[Result]:
        assert self.engine is not None and self.render is not None, "load() first"
        results: list[Result | None] = [None] * len(batch)
        ready: list[int] = []
        for index, request in enumerate(batch):
            try:
                for image in request.images:
                    check_image(image)
                ready.append(index)
            except ValueError as exc:
                results[index] = exc
        if ready:
            prompts, images, params = build_inputs(
                [batch[i] for i in ready], self.render, self.defaults
            )
            start = time.perf_counter()
            outputs = self.engine.generate(
                prompt=prompts, image_data=images, sampling_params=params
            )
            elapsed = time.perf_counter() - start
            for index, output in zip(ready, outputs, strict=True):
                results[index] = map_output(batch[index].id, output, elapsed)
        return [result if result is not None else "no result" for result in results]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None
