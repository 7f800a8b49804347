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
``temperature`` (0 unless given: greedy), ``top_p``, ``seed``, ``stop``. Latency is that of the
successful attempt; tokens come from ``usage``.
"""

from __future__ import annotations

import json
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
from vlmhb.worker.protocol import Init, Request, Response

FINISH_REASONS = {"stop": "stop", "eos": "stop", "length": "length", "max_tokens": "length"}
_RETRY_STATUS = {408, 409, 425, 429}
_PASSED_THROUGH = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")


class HTTPStatusError(RuntimeError):
    """An HTTP error status not worth retrying (4xx except 408, 409, 425, 429)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(RuntimeError):
    """An attempt failed in a way worth trying again (429, 5xx, connection, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def parse_completion(request_id: str, payload: dict[str, Any], latency_s: float) -> Response:
    """Map a chat-completions answer onto a ``Response``; raise ``ValueError`` if malformed."""
    try:
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed completion: {json.dumps(payload)[:300]}") from exc
    usage = payload.get("usage") or {}
    reason = choice.get("finish_reason")
    return Response(
        id=request_id,
        text=text,
        latency_s=latency_s,
        prompt_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        finish_reason=FINISH_REASONS.get(reason, reason) if reason else None,
    )


def retry_delay(attempt: int, options: ClientOptions, retry_after: float | None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential, capped."""
    delay = options.backoff_s * (2**attempt)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, options.backoff_max_s)


class OpenAIBackend:
    """Sends each request of a batch to the server, ``concurrency`` at a time."""

    def __init__(self) -> None:
        self.options: ClientOptions | None = None
        self.defaults: dict[str, Any] = {}
        self._pool: ThreadPoolExecutor | None = None

    def load(self, init: Init) -> LoadInfo:
        self.options = client_options(init)
        self.defaults = dict(init.generation)
        concurrency = max(1, int(init.load.get("concurrency", 8)))
        if init.load.get("check_server", True):
            self._check_server()
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
            self._send(
                "GET", f"{options.base_url}/models", None, timeout=min(options.timeout_s, 30.0)
            )
        except HTTPStatusError as exc:
            if exc.status not in (404, 405):  # a server without /models is still a server
                raise RuntimeError(f"openai backend: server not usable: {exc}") from None
        except RuntimeError as exc:
            raise RuntimeError(f"openai backend: server not usable: {exc}") from None

    def _answer(self, request: Request) -> Result:
        options = self._require_options()
        try:
            for image in request.images:
                check_image(image)
            body = build_body(request, options.model, merged_generation(self.defaults, request))
            body.update(options.extra_body)
        except (OSError, ValueError) as exc:
            return exc
        url = f"{options.base_url}/chat/completions"
        for attempt in range(options.max_retries + 1):
            start = time.perf_counter()
            try:
                payload = self._send("POST", url, body, timeout=options.timeout_s)
                return parse_completion(request.id, payload, time.perf_counter() - start)
            except RetryableError as exc:
                if attempt >= options.max_retries:
                    return f"gave up after {attempt + 1} attempt(s): {exc}"
                delay = retry_delay(attempt, options, exc.retry_after)
                print(f"[openai] {request.id}: {exc}; retry in {delay:.2f}s", file=sys.stderr)
                time.sleep(delay)
            except (RuntimeError, ValueError) as exc:
                return options.redact(str(exc))
        return "unreachable"  # pragma: no cover - the loop always returns

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None, timeout: float
    ) -> dict[str, Any]:
        """One HTTP attempt; ``RetryableError`` for what may pass, ``RuntimeError`` otherwise."""
        options = self._require_options()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        http_request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(http_request, timeout=timeout) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as exc:
            detail = options.redact(exc.read()[:300].decode("utf-8", "replace"))
            message = f"HTTP {exc.code} from {url}: {detail}"
            if exc.code in _RETRY_STATUS or exc.code >= 500:
                raise RetryableError(
                    message, _retry_after(exc.headers.get("Retry-After"))
                ) from None
            raise HTTPStatusError(message, exc.code) from None
        except urllib.error.URLError as exc:
            raise RetryableError(f"cannot reach {url}: {exc.reason}") from None
        except (TimeoutError, ConnectionError) as exc:
            raise RetryableError(f"{type(exc).__name__} after {timeout:g}s from {url}") from None
        try:
            payload = json.loads(raw)
        except ValueError:
            raise RuntimeError(f"not JSON from {url}: {raw[:200]!r}") from None
        if not isinstance(payload, dict):
            raise RuntimeError(f"not a JSON object from {url}")
        return payload

    def _require_options(self) -> ClientOptions:
        if self.options is None:
            raise RuntimeError("openai backend: load() was not called")
        return self.options


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
