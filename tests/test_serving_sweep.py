"""Load sweeps end to end on the orchestrator side: plan column and ``--concurrency``, one run
per level, serving figures in run.json, the report's serving section, ``--sla`` and
``--fail-under ttft_p95<=…``.

The server is a real HTTP server on 127.0.0.1 replaying SGLang-format streams (no engine can
serve quickly here; the vLLM server itself is exercised in ``test_serving_vllm.py``). The
worker and the CLI are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import make_dataset, vlmhb_cmd

from vlmhb.errors import PlanError, VlmhbError
from vlmhb.gate.sla import SlaSpecError, check_sla, parse_sla
from vlmhb.monitor.serving import serving_summary
from vlmhb.plan.plan_csv import load_plan
from vlmhb.plan.sweep import expand_sweeps, parse_levels, sweep_key


class StreamingServer:
    """Streams ``answer`` for every prompt, a word per event; ``odd`` answers differently
    when more than ``odd_above`` requests are in flight (a load-dependent server)."""

    def __init__(self, pause_s: float = 0.01, odd_above: int | None = None) -> None:
        self.in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"][-1]["text"]
                with server.lock:
                    server.in_flight += 1
                    crowded = odd_above is not None and server.in_flight > odd_above
                words = (["другой", "ответ"] if crowded else ["ответ", "на", "вопрос"]) + [
                    str(len(prompt))
                ]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                events = [
                    {"choices": [{"delta": {"content": (" " if i else "") + w}}]}
                    for i, w in enumerate(words)
                ]
                events.append({"choices": [{"delta": {}, "finish_reason": "stop"}]})
                events.append(
                    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}
                )
                for event in events:
                    data = b"data: " + json.dumps(event).encode() + b"\n\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                    time.sleep(pause_s)
                done = b"data: [DONE]\n\n"
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
                with server.lock:
                    server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def server():
    srv = StreamingServer(odd_above=3)
    yield srv
    srv.close()


def _plan(tmp_path: Path, write_plan, url: str, **extra: object) -> Path:
    dataset = make_dataset(tmp_path / "data", n_docs=6)
    row = {
        "dataset": str(dataset),
        "backend": "openai",
        "model": "served",
        "name": "srv",
        "isolation": "local",
        "load": {"base_url": url},
        **extra,
    }
    return write_plan([row])


def test_levels_and_the_plan_column(tmp_path: Path, write_plan) -> None:
    assert parse_levels("1, 4,16,4") == (1, 4, 16)
    for bad in ("0", "a,2", ""):
        with pytest.raises(VlmhbError):
            parse_levels(bad)
    plan = _plan(tmp_path, write_plan, "http://127.0.0.1:9/v1", concurrency="1,8", batch_size=8)
    runs = expand_sweeps(load_plan(plan))
    assert [(r.load["concurrency"], r.batch_size, r.name) for r in runs] == [
        (1, 8, "srv c=1"),
        (8, 32, "srv c=8"),
    ]
    assert expand_sweeps(load_plan(plan), (2,))[0].load["concurrency"] == 2
    record = {"plan_row": runs[0].model_dump(mode="json"), "dataset_hash": "h"}
    other = {"plan_row": runs[1].model_dump(mode="json"), "dataset_hash": "h"}
    assert sweep_key(record) == sweep_key(other)
    hf = write_plan(
        [
            {
                "dataset": str(tmp_path / "data"),
                "backend": "hf",
                "model": "org/m",
                "concurrency": "4",
            }
        ],
        name="hf.csv",
    )
    with pytest.raises(PlanError, match=r"hf\.csv:2:concurrency: backend 'hf' has no concurr"):
        expand_sweeps(load_plan(hf))
    hf_only = write_plan(
        [{"dataset": str(tmp_path / "data"), "backend": "hf", "model": "org/m"}], name="hf2.csv"
    )
    with pytest.raises(VlmhbError, match="the plan has none"):
        expand_sweeps(load_plan(hf_only), (4,))


def test_serving_summary_percentiles_window_and_errors() -> None:
    lines = [
        {"id": "a", "started_at": 100.0, "latency_s": 1.0, "ttft_s": 0.2, "itl_s": [0.1, 0.3]},
        {"id": "b", "started_at": 100.5, "latency_s": 1.5, "ttft_s": 0.4, "itl_s": [0.2]},
        {"id": "a", "started_at": 300.0, "latency_s": 9.0, "ttft_s": 9.0},  # duplicate: ignored
        {"id": "c", "error": "HTTP 500", "latency_s": None},
        {"id": "d", "started_at": 200.0, "latency_s": 1.0},  # a resumed attempt, much later
    ]
    for line in lines[:2]:
        line["output_tokens"] = 3
    summary = serving_summary(lines, concurrency=2)
    assert summary["serving_requests"] == 4 and summary["serving_errors"] == 1
    # busy 100-102 and 200-201: the gap between attempts is not load time
    assert summary["serving_window_s"] == 3.0 and summary["req_per_s"] == 1.0
    assert summary["output_tok_per_s"] == 2.0
    assert summary["ttft_p50_s"] == pytest.approx(0.3)
    assert summary["itl_p50_s"] == pytest.approx(0.2)
    assert summary["e2e_p99_s"] == pytest.approx(1.49)
    assert serving_summary([{"id": "x", "latency_s": 1.0}]) == {}


def test_sla_parsing_and_the_highest_level_meeting_it() -> None:
    conditions = parse_sla("ttft_p95=2s,e2e_p95_s<=1500ms")
    assert [(c.figure, c.bound_s) for c in conditions] == [("ttft_p95", 2.0), ("e2e_p95", 1.5)]
    for bad in ("ttft_p95>2", "speed=3", ""):
        with pytest.raises(SlaSpecError):
            parse_sla(bad)

    def record(level: int, ttft: float, errors: int = 0) -> dict:
        row = {"dataset": "d", "backend": "vllm-server", "load": {"concurrency": level}}
        resources = {"req_per_s": 1.0, "ttft_p95_s": ttft, "e2e_p95_s": 1.0}
        return {"plan_row": row, "resources": {**resources, "serving_errors": errors}}

    records = [record(1, 0.1), record(4, 0.5), record(16, 1.9, errors=2), record(64, 3.0)]
    (verdict,) = check_sla(records, conditions)
    assert verdict.best_level == 4
    assert "c=16 misses: 2 error(s)" in verdict.describe()
    assert "c=64 misses: ttft_p95=3s > 2s" in verdict.describe()


def test_a_sweep_through_the_cli_report_sla_and_gate(
    tmp_path: Path, write_plan, server: StreamingServer
) -> None:
    plan = _plan(tmp_path, write_plan, server.url, stages="infer,report")
    runs_dir = tmp_path / "runs"
    result = subprocess.run(
        vlmhb_cmd(
            "run",
            str(plan),
            "--runs-dir",
            str(runs_dir),
            "--concurrency",
            "1,8",
            "--sla",
            "ttft_p95=5s,e2e_p95=30s",
            "--fail-under",
            "ttft_p95<=5",
            "--fail-under",
            "req_per_s>=1000000",
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 3, result.stderr + result.stdout  # req/s gate missed on purpose
    records = [json.loads(p.read_text()) for p in runs_dir.glob("*/run.json")]
    assert sorted(r["plan_row"]["load"]["concurrency"] for r in records) == [1, 8]
    for record in records:
        resources = record["resources"]
        assert resources["serving_requests"] == 18 and resources["serving_errors"] == 0
        assert resources["ttft_p50_s"] > 0 and resources["itl_p95_s"] > 0
        assert resources["e2e_p99_s"] >= resources["e2e_p50_s"] and resources["req_per_s"] > 0
    assert "highest level meeting it: 8" in result.stdout
    assert "gate pass: ttft_p95<=5" in result.stdout
    assert "gate FAIL: req_per_s>=1000000" in result.stdout
    summary = (runs_dir / "summary.md").read_text()
    assert "## Serving" in summary and "TTFT p95 (s)" in summary
    # c=8 met a crowded server: its greedy answers differ from c=1's, and the report says so
    assert "srv c=8" in summary and "differ" in summary
    assert "Answers differ from the lowest concurrency level: srv c=8" in summary
    html = (runs_dir / "report.html").read_text()
    assert 'id="serving"' in html and "lowest level" in html and "serving-chart" in html
