"""A key never reaches the disk, even when a server echoes it; ``api_key_env`` works on its own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import make_dataset

from vlmhb import api
from vlmhb.run.secrets import mask, passed_variables, secret_values

KEY = "sk-live-0123456789abcdef"  # the variable name is outside every passed family


class EchoingServer(ThreadingHTTPServer):
    """An OpenAI-compatible server (a stand-in for a hosted API, which cannot be reached here)
    that checks the bearer key and puts it into every completion, as a leaky proxy might."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        ok = self.headers.get("Authorization") == f"Bearer {KEY}"
        self._reply(200 if ok else 401, {"data": [{"id": "served"}]} if ok else {"error": "key"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        message = {"role": "assistant", "content": f"Иванов (debug: {auth})"}
        self._reply(200, {"choices": [{"message": message, "finish_reason": "stop"}]})


@pytest.fixture
def server() -> Iterator[EchoingServer]:
    httpd = EchoingServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_an_echoed_key_is_masked_everywhere_on_disk(
    tmp_path: Path, write_plan, server: EchoingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_TOKEN", KEY)
    make_dataset(tmp_path / "ds", n_docs=2)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "openai",
                "model": "served",
                "stages": "infer,report",
                "load": {"base_url": url, "api_key_env": "SERVICE_TOKEN", "max_retries": 0},
            }
        ]
    )
    runs = tmp_path / "runs"
    result = api.run_plan(plan, runs_dir=runs, isolation="local", progress=False)
    assert not result.failed, result.runs[0].error  # the key reached the worker alone
    (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
    answers = [json.loads(x) for x in (run_dir / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 6 and all(a["answer"] == "Иванов (debug: Bearer ***)" for a in answers)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert result.report is not None and result.report in written
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path


def test_the_secret_helpers() -> None:
    load = {"pass_env": ["A", "B"], "api_key_env": "C"}
    assert passed_variables(load) == ("A", "B", "C")
    assert passed_variables({"api_key_env": "C", "pass_env": ["C"]}) == ("C",)
    secrets = secret_values(load, {"A": "1", "B": "token-b", "C": "token-b-longer"})
    assert secrets == ["token-b-longer", "token-b"]  # a one-character flag is no secret
    assert mask("x token-b-longer y token-b", secrets) == "x *** y ***"
