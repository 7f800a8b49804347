"""A streaming OpenAI chat-completions client: ``http.client`` and server-sent events.

Standard library only (it runs inside model venvs). ``StreamClient.chat`` posts one body with
``"stream": true`` (and ``stream_options.include_usage``), reads the SSE stream as it comes
and returns a ``StreamedAnswer`` with what a load test needs: time to first token, the gaps
between content chunks (inter-token latencies), end-to-end latency, token counts and the
wall-clock start. One keep-alive connection per thread, so a thread pool drives the server
at its own concurrency without reconnecting per request.

A server that ignores ``stream`` and answers with one JSON object is read too (then the time
to first token is the end-to-end latency and there are no inter-token gaps).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

FINISH_REASONS = {"stop": "stop", "eos": "stop", "length": "length", "max_tokens": "length"}
RETRY_STATUS = frozenset({408, 409, 425, 429})


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
class StreamedAnswer:
    """One chat completion and how it arrived."""

    text: str
    e2e_s: float
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    started_at: float = 0.0  # time.time() when the request was sent


def iter_sse_data(lines: Iterable[bytes]) -> Iterator[str]:
    """The ``data`` payload of each server-sent event, until ``[DONE]`` or the end.

    Multi-line ``data`` fields are joined with newlines (the SSE rule); comments (``:``) and
    other fields (``event``, ``id``, ``retry``) are skipped.
    """
    parts: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if parts:
                data = "\n".join(parts)
                parts = []
                if data.strip() == "[DONE]":
                    return
                yield data
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            parts.append(value[1:] if value.startswith(" ") else value)
    if parts and "\n".join(parts).strip() != "[DONE]":
        yield "\n".join(parts)


class ChunkAccumulator:
    """Folds streamed ``chat.completion.chunk`` objects into one answer, timing each chunk."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.pieces: list[str] = []
        self.ttft_s: float | None = None
        self.itl_s: list[float] = []
        self.chunks_with_text = 0
        self.prompt_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finish_reason: str | None = None
        self._last: float | None = None

    def add(self, chunk: dict[str, Any], now: float) -> None:
        """One decoded chunk received at ``now`` (``time.perf_counter``)."""
        if isinstance(chunk.get("error"), dict | str):
            detail = chunk["error"]
            message = detail.get("message") if isinstance(detail, dict) else detail
            raise RuntimeError(f"server error mid-stream: {message}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = usage.get("prompt_tokens", self.prompt_tokens)
            self.output_tokens = usage.get("completion_tokens", self.output_tokens)
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content") or ""
            if content:
                self.pieces.append(str(content))
            # A reasoning model's thinking is not the answer, but it is generated tokens.
            if content or delta.get("reasoning_content"):
                self.chunks_with_text += 1
                if self.ttft_s is None:
                    self.ttft_s = now - self.start
                elif self._last is not None:
                    self.itl_s.append(now - self._last)
                self._last = now
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = FINISH_REASONS.get(reason, reason)

    def answer(self, end: float, started_at: float) -> StreamedAnswer:
        """The folded answer, the stream having ended at ``end``."""
        return StreamedAnswer(
            text="".join(self.pieces),
            e2e_s=end - self.start,
            ttft_s=self.ttft_s,
            itl_s=self.itl_s,
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens
            if self.output_tokens is not None
            else self.chunks_with_text,
            finish_reason=self.finish_reason,
            started_at=started_at,
        )


def parse_stream(lines: Iterable[bytes], start: float, started_at: float = 0.0) -> StreamedAnswer:
    """Read a whole SSE chat stream (recorded or live), timing chunks as they are read."""
    folded = ChunkAccumulator(start)
    for data in iter_sse_data(lines):
        try:
            chunk = json.loads(data)
        except ValueError:
            raise RuntimeError(f"not JSON in the stream: {data[:200]!r}") from None
        if isinstance(chunk, dict):
            folded.add(chunk, time.perf_counter())
    return folded.answer(time.perf_counter(), started_at)


def parse_completion(payload: dict[str, Any], e2e_s: float, started_at: float) -> StreamedAnswer:
    """A non-streamed chat completion as a ``StreamedAnswer``; ``ValueError`` if malformed."""
    try:
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed completion: {json.dumps(payload)[:300]}") from exc
    usage = payload.get("usage") or {}
    reason = choice.get("finish_reason")
    return StreamedAnswer(
        text=text,
        e2e_s=e2e_s,
        ttft_s=None,
        prompt_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        finish_reason=FINISH_REASONS.get(reason, reason) if reason else None,
        started_at=started_at,
    )


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (dates are not honoured), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class StreamClient:
    """Chat completions over one keep-alive connection per thread."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 120.0):
        parsed = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port
        self.prefix = parsed.path
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            cls = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = cls(self.host, self.port, timeout=self.timeout_s)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def headers(self, stream: bool) -> dict[str, str]:
        """Request headers (the key, when there is one, as a bearer token)."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def chat(self, body: dict[str, Any], stream: bool = True) -> StreamedAnswer:
        """POST ``/chat/completions``; ``RetryableError``/``HTTPStatusError``/``RuntimeError``."""
        body = dict(body)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": False}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        url = f"{self.base_url}/chat/completions"
        started_at = time.time()
        start = time.perf_counter()
        try:
            reply = self._post(f"{self.prefix}/chat/completions", data, stream)
            if reply.status >= 400:
                self._raise_status(reply, url)
            kind = reply.getheader("Content-Type") or ""
            if stream and kind.startswith("text/event-stream"):
                folded = ChunkAccumulator(start)
                for chunk_data in iter_sse_data(iter(reply.readline, b"")):
                    try:
                        chunk = json.loads(chunk_data)
                    except ValueError:
                        raise RuntimeError(
                            f"not JSON in the stream: {chunk_data[:200]!r}"
                        ) from None
                    if isinstance(chunk, dict):
                        folded.add(chunk, time.perf_counter())
                reply.read()
                return folded.answer(time.perf_counter(), started_at)
            raw = reply.read()
        except TimeoutError as exc:
            self._drop_connection()
            raise RetryableError(
                f"{type(exc).__name__} after {self.timeout_s:g}s from {url}"
            ) from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            self._drop_connection()
            raise RetryableError(f"cannot reach {url}: {exc!r}") from None
        payload = json_object(raw, url)
        try:
            return parse_completion(payload, time.perf_counter() - start, started_at)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None

    def _post(self, path: str, data: bytes, stream: bool) -> http.client.HTTPResponse:
        """Send one POST; a kept-alive connection the server has closed meanwhile (it idled
        past the server's keep-alive timeout) is replaced at once, not counted as a failure."""
        reused = getattr(self._local, "connection", None) is not None
        try:
            connection = self._connection()
            connection.request("POST", path, data, self.headers(stream))
            return connection.getresponse()
        except ConnectionError:
            if not reused:
                raise
            self._drop_connection()
        connection = self._connection()
        connection.request("POST", path, data, self.headers(stream))
        return connection.getresponse()

    def _raise_status(self, reply: http.client.HTTPResponse, url: str) -> None:
        detail = reply.read()[:300].decode("utf-8", "replace")
        message = f"HTTP {reply.status} from {url}: {detail}"
        if reply.status in RETRY_STATUS or reply.status >= 500:
            raise RetryableError(message, retry_after_seconds(reply.getheader("Retry-After")))
        raise HTTPStatusError(message, reply.status)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._drop_connection()


def json_object(raw: bytes | str, url: str) -> dict[str, Any]:
    """A server's reply as a JSON object; anything else is an error naming the server."""
    try:
        payload = json.loads(raw)
    except ValueError:
        raise RuntimeError(f"not JSON from {url}: {raw[:200]!r}") from None
    if not isinstance(payload, dict):
        raise RuntimeError(f"not a JSON object from {url}")
    return payload
