"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

Standard library only (``urllib`` + a thread pool), so its env is tiny. Load options
(``init.load``):

* ``base_url`` (required), e.g. ``http://127.0.0.1:8000/v1``;
* ``api_key_env``: the name of the environment variable holding the key. The key itself is
  never written anywhere: every message this backend produces has it masked;
* ``concurrency`` (8): requests in flight at once;
* ``timeout_s`` (120): per HTTP attempt; ``max_retries`` (4), ``backoff_s`` (1.0),
  ``backoff_max_s`` (30): retries with exponential backoff on 429, 5xx, connection errors and
  timeouts (a ``Retry-After`` header is honoured up to ``backoff_max_s``);
* ``check_server`` (true): ``GET {base_url}/models`` at load, so an unreachable server is a
  ``fatal`` at once rather than one error per sample;
* ``extra_body``: a dict merged into every request body (server-specific options).

``init.model`` is the served model name. Generation: ``max_new_tokens`` → ``max_tokens``,
``temperature`` (0 unless given: greedy), ``top_p``, ``seed``, ``stop``.

Requests stream (``stream``: true by default; false for a server that cannot): each answer
records its time to first token, inter-token gaps, end-to-end latency (of the successful
attempt) and the wall-clock start; tokens come from ``usage`` (``stream_options``), else the
number of content chunks. The client is ``openai_stream.StreamClient``, shared with the
managed-server backends (``served``).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vlmhb.worker.backends.base import LoadInfo, Result, check_image
from vlmhb.worker.backends.chat import build_messages, merged_generation, url_image_part
from vlmhb.worker.backends.openai_stream import (
    FINISH_REASONS,
    RETRY_STATUS,
    HTTPStatusError,
    RetryableError,
    StreamClient,
    StreamedAnswer,
    json_object,
    retry_after_seconds,
)
from vlmhb.worker.protocol import Init, Request, Response

__all__ = ["FINISH_REASONS", "HTTPStatusError", "OpenAIBackend", "RetryableError"]
_PASSED_THROUGH = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")


@dataclass
class ClientOptions:
    """How to reach the server and how hard to try."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    stream: bool = True

    def redact(self, text: str) -> str:
        """``text`` with the API key masked, wherever it appears."""
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return text


def client_options(init: Init) -> ClientOptions:
    """Read and check the load options; raise ``ValueError`` with a one-line reason."""
    opts = init.load
    base_url = str(opts.get("base_url") or "").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(
            "openai backend: load option base_url (http[s]://host[:port]/v1) is required"
        )
    api_key = None
    key_env = opts.get("api_key_env")
    if key_env:
        api_key = os.environ.get(str(key_env))
        if not api_key:
            raise ValueError(
                f"openai backend: environment variable {key_env} (api_key_env) is not set"
            )
    extra = opts.get("extra_body") or {}
    if not isinstance(extra, dict):
        raise ValueError("openai backend: extra_body must be a JSON object")
    return ClientOptions(
        base_url=base_url,
        model=str(opts.get("served_model_name") or init.model),
        api_key=api_key,
        timeout_s=float(opts.get("timeout_s", 120.0)),
        max_retries=int(opts.get("max_retries", 4)),
        backoff_s=float(opts.get("backoff_s", 1.0)),
        backoff_max_s=float(opts.get("backoff_max_s", 30.0)),
        extra_body=dict(extra),
        stream=bool(opts.get("stream", True)),
    )


def build_body(request: Request, model: str, generation: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for one request (images inlined as data URLs)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": build_messages(request, url_image_part),
        "temperature": 0.0,
    }
    if generation.get("max_new_tokens") is not None:
        body["max_tokens"] = int(generation["max_new_tokens"])
    for key in _PASSED_THROUGH:
        if generation.get(key) is not None:
            body[key] = generation[key]
    return body


def to_response(request_id: str, answer: StreamedAnswer) -> Response:
    """A protocol ``Response`` carrying the answer and its streaming timings."""
    return Response(
        id=request_id,
        text=answer.text,
        latency_s=answer.e2e_s,
        prompt_tokens=answer.prompt_tokens,
        output_tokens=answer.output_tokens,
        finish_reason=answer.finish_reason,
        ttft_s=answer.ttft_s,
        itl_s=[round(gap, 6) for gap in answer.itl_s] if answer.ttft_s is not None else None,
        started_at=answer.started_at,
    )


def retry_delay(attempt: int, options: ClientOptions, retry_after: float | None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential, capped."""
    delay = options.backoff_s * (2**attempt)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, options.backoff_max_s)


class OpenAIBackend:
    """Sends each request of a batch to the server, ``concurrency`` at a time, streaming."""

    def __init__(self) -> None:
        self.options: ClientOptions | None = None
        self.defaults: dict[str, Any] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._client: StreamClient | None = None

    def load(self, init: Init) -> LoadInfo:
        self.options = client_options(init)
        self.defaults = dict(init.generation)
        concurrency = max(1, int(init.load.get("concurrency", 8)))
        if init.load.get("check_server", True):
            self._check_server()
        self._client = StreamClient(
            self.options.base_url, self.options.api_key, self.options.timeout_s
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")
        return LoadInfo(
            device=f"remote:{self.options.base_url}", versions={"python": sys.version.split()[0]}
        )

    def generate(self, batch: list[Request]) -> list[Result]:
        assert self._pool is not None, "load() first"
        return list(self._pool.map(self._answer, batch))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _check_server(self) -> None:
        options = self._require_options()
        try:
            self._send("GET", f"{options.base_url}/models", timeout=min(options.timeout_s, 30.0))
        except HTTPStatusError as exc:
            if exc.status not in (404, 405):  # a server without /models is still a server
                raise RuntimeError(f"openai backend: server not usable: {exc}") from None
        except RuntimeError as exc:
            raise RuntimeError(f"openai backend: server not usable: {exc}") from None

    def _answer(self, request: Request) -> Result:
        options = self._require_options()
        assert self._client is not None, "load() first"
        try:
            for image in request.images:
                check_image(image)
            body = build_body(request, options.model, merged_generation(self.defaults, request))
            body.update(options.extra_body)
        except (OSError, ValueError) as exc:
            return exc
        for attempt in range(options.max_retries + 1):
            try:
                return to_response(request.id, self._client.chat(body, stream=options.stream))
            except RetryableError as exc:
                if attempt >= options.max_retries:
                    return options.redact(f"gave up after {attempt + 1} attempt(s): {exc}")
                delay = retry_delay(attempt, options, exc.retry_after)
                message = options.redact(f"[openai] {request.id}: {exc}; retry in {delay:.2f}s")
                print(message, file=sys.stderr)
                time.sleep(delay)
            except (RuntimeError, ValueError) as exc:
                return options.redact(str(exc))
        return "unreachable"  # pragma: no cover - the loop always returns

    def _send(self, method: str, url: str, timeout: float) -> dict[str, Any]:
        """One plain HTTP call; ``RetryableError`` for what may pass, ``RuntimeError`` otherwise."""
        options = self._require_options()
        headers = {"Accept": "application/json"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        http_request = urllib.request.Request(url, headers=headers, method=method)
        try:
            with urllib.request.urlopen(http_request, timeout=timeout) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as exc:
            detail = options.redact(exc.read()[:300].decode("utf-8", "replace"))
            message = f"HTTP {exc.code} from {url}: {detail}"
            if exc.code in RETRY_STATUS or exc.code >= 500:
                retry_after = retry_after_seconds(exc.headers.get("Retry-After"))
                raise RetryableError(message, retry_after) from None
            raise HTTPStatusError(message, exc.code) from None
        except urllib.error.URLError as exc:
            raise RetryableError(f"cannot reach {url}: {exc.reason}") from None
        except (TimeoutError, ConnectionError) as exc:
            raise RetryableError(f"{type(exc).__name__} after {timeout:g}s from {url}") from None
        return json_object(raw, url)

    def _require_options(self) -> ClientOptions:
        if self.options is None:
            raise RuntimeError("openai backend: load() was not called")
        return self.options
