"""The openai backend through the real worker, against a real HTTP server on 127.0.0.1.

The server is a small ``http.server`` this test starts: it stands in for vLLM serve, SGLang
server or a hosted API (none can run here), checks the request shape, and misbehaves on
purpose (429 then success, 500 for ever, too slow) depending on the prompt.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import run_worker

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-5ecret-never-logged"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class FakeServer:
    """An OpenAI-compatible chat server whose behaviour depends on the prompt text."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts: dict[str, int] = {}
        self.in_flight = 0
        self.models_status = 200  # what GET /v1/models answers
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(
                self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {SECRET}":
                    self._reply(401, {"error": "bad key"})
                    return
                if server.models_status != 200:
                    self._reply(server.models_status, {"error": "no such route"})
                    return
                self._reply(200, {"object": "list", "data": [{"id": "served-model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"][-1]["text"]
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    server.attempts[prompt] = server.attempts.get(prompt, 0) + 1
                    attempt = server.attempts[prompt]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(prompt, attempt, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, prompt: str, attempt: int, body: dict[str, Any]) -> None:
                if prompt == "flaky" and attempt == 1:
                    self._reply(429, {"error": "slow down"}, {"Retry-After": "0"})
                    return
                if prompt == "down":
                    # echoes the auth header: the backend must mask the key in its error
                    self._reply(500, {"error": f"boom {self.headers.get('Authorization')}"})
                    return
                if prompt == "slow":
                    time.sleep(2.0)
                if prompt.startswith("wait"):
                    time.sleep(0.3)
                finish = "length" if prompt == "long" else "stop"
                text = "обрезано" if prompt == "long" else f"ответ на {prompt}"
                self._reply(
                    200,
                    {
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": finish,
                            }
                        ],
                        "usage": {"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45},
                    },
                )

        return Handler

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Any:
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "page.png"
    path.write_bytes(PNG)
    return str(path)


def _init(url: str, **load: Any) -> dict[str, Any]:
    options = {
        "base_url": url,
        "api_key_env": "VLMHB_TEST_KEY",
        "max_retries": 2,
        "backoff_s": 0.05,
        "timeout_s": 5,
        **load,
    }
    return {
        "backend": "openai",
        "model": "served-model",
        "load": options,
        "generation": {"max_new_tokens": 16},
        "batch_size": 8,
    }


def test_request_shape_tokens_and_finish_reason(server: FakeServer, image: str) -> None:
    requests = [
        {
            "id": "a",
            "images": [image],
            "prompt": "ok",
            "system": "Ты эксперт.",
            "generation": {"fields": ["surname"], "mode": "document", "seed": 7},
        },
        {"id": "b", "images": [image], "prompt": "long"},
    ]
    messages, stderr = run_worker(_init(server.url), requests, env={"VLMHB_TEST_KEY": SECRET})
    assert messages[0]["type"] == "ready"
    by_id = {m["id"]: m for m in messages[1:]}
    assert by_id["a"]["text"] == "ответ на ok"
    assert (by_id["a"]["prompt_tokens"], by_id["a"]["output_tokens"]) == (42, 3)
    assert by_id["a"]["finish_reason"] == "stop"
    assert by_id["a"]["latency_s"] > 0
    assert by_id["b"]["finish_reason"] == "length"
    body = next(b for b in server.bodies if b["messages"][-1]["content"][-1]["text"] == "ok")
    assert body["model"] == "served-model"
    assert body["max_tokens"] == 16 and body["temperature"] == 0.0 and body["seed"] == 7
    assert "fields" not in body and "mode" not in body
    assert body["messages"][0] == {"role": "system", "content": "Ты эксперт."}
    image_part = body["messages"][1]["content"][0]
    assert image_part["type"] == "image_url"
    assert (
        image_part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    )
    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in stderr


def test_429_is_retried_then_succeeds(server: FakeServer, image: str) -> None:
    messages, _ = run_worker(
        _init(server.url),
        [{"id": "f", "images": [image], "prompt": "flaky"}],
        env={"VLMHB_TEST_KEY": SECRET},
    )
    assert messages[1]["type"] == "response", messages
    assert messages[1]["text"] == "ответ на flaky"
    assert server.attempts["flaky"] == 2


def test_500s_exhaust_retries_into_an_error_without_the_key(server: FakeServer, image: str) -> None:
    requests = [
        {"id": "d", "images": [image], "prompt": "down"},
        {"id": "ok", "images": [image], "prompt": "ok"},
    ]
    messages, stderr = run_worker(_init(server.url), requests, env={"VLMHB_TEST_KEY": SECRET})
    by_id = {m["id"]: m for m in messages[1:]}
    assert by_id["d"]["type"] == "error"
    assert "3 attempt(s)" in by_id["d"]["message"] and "HTTP 500" in by_id["d"]["message"]
    assert server.attempts["down"] == 3
    assert by_id["ok"]["type"] == "response"
    everything = json.dumps(messages) + stderr
    assert SECRET not in everything and "***" in everything


def test_slow_server_times_out_into_an_error(server: FakeServer, image: str) -> None:
    init = _init(server.url, timeout_s=0.3, max_retries=1)
    start = time.monotonic()
    messages, _ = run_worker(
        init, [{"id": "s", "images": [image], "prompt": "slow"}], env={"VLMHB_TEST_KEY": SECRET}
    )
    assert messages[1]["type"] == "error"
    assert "Timeout" in messages[1]["message"] or "timed out" in messages[1]["message"]
    assert time.monotonic() - start < 10


def test_concurrency_limit_and_unreadable_image(
    server: FakeServer, image: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    requests = [{"id": f"w{i}", "images": [image], "prompt": f"wait{i}"} for i in range(6)]
    requests.append({"id": "bad", "images": [str(bad)], "prompt": "ok"})
    messages, _ = run_worker(
        _init(server.url, concurrency=2), requests, env={"VLMHB_TEST_KEY": SECRET}
    )
    by_id = {m["id"]: m for m in messages[1:]}
    assert all(by_id[f"w{i}"]["type"] == "response" for i in range(6))
    assert by_id["bad"]["type"] == "error" and "not a readable image" in by_id["bad"]["message"]
    assert server.max_in_flight == 2


def test_missing_key_bad_key_and_unreachable_server_are_fatal(server: FakeServer) -> None:
    messages, _ = run_worker(_init(server.url), [], env={})
    assert messages[0]["type"] == "fatal" and "VLMHB_TEST_KEY" in messages[0]["message"]
    messages, _ = run_worker(_init(server.url), [], env={"VLMHB_TEST_KEY": "sk-wrong"})
    assert messages[0]["type"] == "fatal" and "HTTP 401" in messages[0]["message"]
    assert "sk-wrong" not in messages[0]["message"]
    messages, _ = run_worker(
        _init("http://127.0.0.1:9/v1", max_retries=0), [], env={"VLMHB_TEST_KEY": SECRET}
    )
    assert messages[0]["type"] == "fatal" and "server not usable" in messages[0]["message"]


def test_a_server_without_models_route_is_still_usable(server: FakeServer, image: str) -> None:
    server.models_status = 404
    request = {"id": "a", "images": [image], "prompt": "ok"}
    messages, _ = run_worker(_init(server.url), [request], env={"VLMHB_TEST_KEY": SECRET})
    assert [m["type"] for m in messages] == ["ready", "response"]


def test_chat_messages_shared_by_the_chat_backends(image: str, tmp_path: Path) -> None:
    from vlmhb.worker.backends.chat import (
        build_messages,
        image_mime,
        merged_generation,
        url_image_part,
    )
    from vlmhb.worker.protocol import Request

    request = Request(
        id="a",
        images=[image, image],
        prompt="Имя?",
        system="  ",
        generation={"max_new_tokens": 4, "mode": "field", "fields": ["name"]},
    )
    messages = build_messages(request)
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": image},
                {"type": "image", "image": image},
                {"type": "text", "text": "Имя?"},
            ],
        }
    ]
    assert build_messages(request, url_image_part)[0]["content"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,iVBOR"
    )
    assert image_mime(str(tmp_path / "scan.JPG")) == "image/jpeg"
    assert merged_generation({"max_new_tokens": 64, "temperature": 0}, request) == {
        "max_new_tokens": 4,
        "temperature": 0,
    }
