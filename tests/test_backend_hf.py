"""The hf backend, for real: the tiny random LLaVA through ``python -m vlmhb.worker`` in hf-cpu.

No test double: the model is built locally by ``vlmhb.worker.tiny_model`` (random weights, so
answers are gibberish, but deterministic gibberish that depends on image and prompt).
One worker serves most tests (module fixture) to keep the suite fast on two cores.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures_models import (  # noqa: F401 - fixtures
    ModelWorker,
    doc_images,
    hf_python,
    shim_dir,
    tiny_model,
    worker_env,
)

SYSTEM = "Ты внимательный ассистент. SYSTEM-MARKER-42."
PROMPTS = [
    "Фамилия?",
    "Прочитайте документ и ответьте на вопрос: дата рождения владельца паспорта?",
    "Extract every field as JSON.",
    "ИНН",
]


def hf_init(model: Path, **load: object) -> dict:
    """An init for the tiny model on the CPU in float32, prompts logged to stderr."""
    options = {"device": "cpu", "dtype": "float32", "log_prompts": True, "threads": 1, **load}
    return {
        "backend": "hf",
        "model": str(model),
        "load": options,
        "generation": {"max_new_tokens": 12},
        "batch_size": 8,
    }


def requests_for(images: list[Path], prefix: str, **generation: object) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "images": [str(images[i])],
            "prompt": PROMPTS[i],
            "system": SYSTEM,
            "generation": dict(generation),
        }
        for i in range(4)
    ]


@pytest.fixture(scope="module")
def worker(hf_python, shim_dir, tiny_model, tmp_path_factory):  # noqa: F811
    log = tmp_path_factory.mktemp("hf-worker") / "worker.log"
    running = ModelWorker(hf_python, shim_dir, log)
    ready = running.start(hf_init(tiny_model))
    assert ready["type"] == "ready", ready
    yield running, ready
    assert running.close() == 0


def test_ready_reports_device_versions_and_load_time(worker):
    _, ready = worker
    assert ready["backend"] == "hf"
    assert ready["device"] == "cpu"
    assert {"torch", "transformers"} <= set(ready["versions"])
    assert ready["versions"]["dtype"] == "float32"
    assert 0 < ready["load_s"] < 120


def test_greedy_is_deterministic_and_depends_on_the_input(worker, doc_images):  # noqa: F811
    running, _ = worker
    first = running.ask(requests_for(doc_images, "a")[:2])
    again = running.ask(requests_for(doc_images, "b")[:2])
    assert first["a0"]["type"] == "response", first["a0"]
    assert first["a0"]["text"] == again["b0"]["text"]
    assert first["a1"]["text"] == again["b1"]["text"]
    assert first["a0"]["text"] != first["a1"]["text"]  # not one fixed string whatever the input


def test_batch_of_four_equals_four_singles(worker, doc_images):  # noqa: F811
    running, _ = worker
    batch = running.ask(requests_for(doc_images, "batch"))
    singles = {}
    for request in requests_for(doc_images, "single"):
        singles.update(running.ask([request]))
    for i in range(4):
        together, alone = batch[f"batch{i}"], singles[f"single{i}"]
        assert together["type"] == alone["type"] == "response"
        assert together["text"] == alone["text"], i
        assert together["output_tokens"] == alone["output_tokens"]
        assert together["prompt_tokens"] == alone["prompt_tokens"]
    # prompts of different lengths in one batch: left padding did not leak into the counts
    assert len({batch[f"batch{i}"]["prompt_tokens"] for i in range(4)}) == 4
    # the four went through one generate call: they share its latency
    assert len({batch[f"batch{i}"]["latency_s"] for i in range(4)}) == 1


ONE_SHOT = """
import json, sys
from vlmhb.worker.backends.hf import HFBackend
from vlmhb.worker.protocol import Init, Request
init, requests = json.load(sys.stdin)
backend = HFBackend()
backend.load(Init(**init))
results = backend.generate([Request(**r) for r in requests])
print(json.dumps([vars(r) for r in results]))
"""


def test_worker_batches_equal_one_generate_call(
    hf_python,  # noqa: F811
    shim_dir,  # noqa: F811
    tiny_model,  # noqa: F811
    doc_images,  # noqa: F811
    tmp_path,
):
    """Eight requests through the worker in batches of three (read ahead while one runs)
    answer exactly as one in-process ``generate`` call over all eight."""
    requests = requests_for(doc_images, "x") + requests_for(doc_images, "y", max_new_tokens=5)
    init = {**hf_init(tiny_model, log_prompts=False), "batch_size": 3}
    running = ModelWorker(hf_python, shim_dir, tmp_path / "worker.log")
    try:
        assert running.start(init)["capacity"] == 3
        through_worker = running.ask(requests)
    finally:
        assert running.close() == 0
    one_shot = subprocess.run(
        [str(hf_python), "-c", ONE_SHOT],
        input=json.dumps([{**init, "batch_size": 8}, requests]),
        env=worker_env(shim_dir),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    at_once = {answer["id"]: answer for answer in json.loads(one_shot.stdout.splitlines()[-1])}
    for request in requests:
        got, want = through_worker[request["id"]], at_once[request["id"]]
        assert got["type"] == "response", got
        for key in ("text", "prompt_tokens", "output_tokens", "finish_reason"):
            assert got[key] == want[key], (request["id"], key)
    assert len({answer["latency_s"] for answer in through_worker.values()}) >= 3  # 3 at most


def test_system_prompt_reaches_the_rendered_chat(worker, doc_images):  # noqa: F811
    running, _ = worker
    answer = running.ask(requests_for(doc_images, "sys")[:1])["sys0"]
    assert answer["type"] == "response"
    logged = [line for line in running.stderr_tail(20000).splitlines() if "prompt sys0" in line]
    assert logged, running.stderr_tail()
    assert "SYSTEM-MARKER-42" in logged[-1]
    assert logged[-1].index("SYSTEM-MARKER-42") < logged[-1].index("Фамилия?")
    assert "<image>" in logged[-1]


def test_finish_reason_length_at_small_max_new_tokens(worker, doc_images):  # noqa: F811
    running, _ = worker
    answers = running.ask(requests_for(doc_images, "cut", max_new_tokens=3))
    for answer in answers.values():
        assert answer["type"] == "response"
        assert answer["output_tokens"] <= 3
    cut = [a for a in answers.values() if a["finish_reason"] == "length"]
    assert cut, answers
    assert all(a["output_tokens"] == 3 for a in cut)
    assert all(a["prompt_tokens"] > 16 for a in answers.values())  # 16 image tokens + text


def test_stop_when_the_model_ends_before_the_limit(worker, doc_images):  # noqa: F811
    running, _ = worker
    answers = running.ask(requests_for(doc_images, "long", max_new_tokens=40))
    reasons = {a["finish_reason"] for a in answers.values()}
    assert reasons <= {"stop", "length"}
    for answer in answers.values():
        if answer["finish_reason"] == "stop":
            assert answer["output_tokens"] < 40
        else:
            assert answer["output_tokens"] == 40


def test_corrupt_image_and_empty_prompt_fail_alone(worker, doc_images):  # noqa: F811
    running, _ = worker
    requests = requests_for(doc_images, "mix")
    requests[1]["images"] = [str(doc_images[-1])]  # corrupt.png
    requests[2]["prompt"] = "   "
    requests.append({"id": "missing", "images": ["/nonexistent/x.png"], "prompt": "Фамилия?"})
    answers = running.ask(requests)
    assert answers["mix1"]["type"] == "error"
    assert "corrupt.png" in answers["mix1"]["message"]
    assert answers["mix2"]["type"] == "error"
    assert "empty prompt" in answers["mix2"]["message"]
    assert answers["missing"]["type"] == "error"
    assert answers["mix0"]["type"] == answers["mix3"]["type"] == "response"
    alone = running.ask(requests_for(doc_images, "ref")[:1])["ref0"]
    assert answers["mix0"]["text"] == alone["text"]


def test_missing_model_is_fatal_naming_it_and_where_it_looked(
    hf_python,  # noqa: F811
    shim_dir,  # noqa: F811
    tmp_path,
):
    running = ModelWorker(hf_python, shim_dir, tmp_path / "worker.log")
    answer = running.start(hf_init(Path("vlmhb-test/no-such-model")))
    assert answer["type"] == "fatal"
    assert "vlmhb-test/no-such-model" in answer["message"]
    assert "Hugging Face cache" in answer["message"]
    assert "HF_HUB_OFFLINE=1" in answer["message"]
    assert running.close() != 0


def test_bad_dtype_and_missing_gpu_are_fatal(hf_python, shim_dir, tiny_model, tmp_path):  # noqa: F811
    running = ModelWorker(hf_python, shim_dir, tmp_path / "a.log")
    answer = running.start(hf_init(tiny_model, dtype="float8"))
    assert answer["type"] == "fatal" and "float8" in answer["message"]
    running.close()
    running = ModelWorker(hf_python, shim_dir, tmp_path / "b.log")
    answer = running.start(hf_init(tiny_model, device="cuda"))  # no GPU on this machine
    assert answer["type"] == "fatal" and "CUDA" in answer["message"]
    running.close()


@pytest.mark.slow  # four worker starts and a model build: ~30 s on two busy cores
def test_gpu_check_script_runs_on_the_cpu(hf_python, tmp_path):  # noqa: F811
    """scripts/gpu_check.py (run by hand on a lent GPU) works here with ``--device cpu``."""
    import json
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    proc = subprocess.run(
        [str(hf_python), str(script), "--device", "cpu", "--dtypes", "bfloat16"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["ok"] and report["device"] == "cpu"
    (run,) = report["runs"]
    assert run["dtype"] == "bfloat16" and run["versions"]["dtype"] == "bfloat16"
    assert run["vs_cpu_float32"]["first_token_equal"] == "4/4"
    assert run["output_tokens"] == 4 * report["max_new_tokens"] or "stop" in run["finish_reasons"]


def test_stop_and_length_from_generated_tokens():
    """Pure helpers of the hf backend (importable without torch)."""
    from vlmhb.worker.backends.hf import cut_at_stop, dtype_keyword

    assert cut_at_stop([5, 6, 2, 3, 3], {2}, 5) == ([5, 6], "stop")
    assert cut_at_stop([5, 6, 7], {2}, 3) == ([5, 6, 7], "length")
    assert cut_at_stop([2], {2}, 3) == ([], "stop")
    assert dtype_keyword("5.24.0") == "dtype"
    assert dtype_keyword("4.56.1") == "dtype"
    assert dtype_keyword("4.45.2") == "torch_dtype"


def model_variant(tiny: Path, folder: Path, template: str | None) -> Path:
    """A copy of the tiny model whose chat template is replaced (or removed)."""
    import shutil

    copy = folder / "variant"
    shutil.copytree(tiny, copy)
    if template is None:
        (copy / "chat_template.jinja").unlink()
    else:
        original = (copy / "chat_template.jinja").read_text()
        (copy / "chat_template.jinja").write_text(template + original)
    return copy


def test_template_refusing_system_gets_it_folded_into_the_user_text(
    hf_python,  # noqa: F811
    shim_dir,  # noqa: F811
    tiny_model,  # noqa: F811
    doc_images,  # noqa: F811
    tmp_path,
):
    refuse = (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
    )
    model = model_variant(tiny_model, tmp_path, refuse)
    running = ModelWorker(hf_python, shim_dir, tmp_path / "worker.log")
    assert running.start(hf_init(model))["type"] == "ready"
    answer = running.ask(requests_for(doc_images, "fold")[:1])["fold0"]
    assert answer["type"] == "response", answer
    log = running.stderr_tail(20000)
    assert running.close() == 0
    assert "system prompt folded" in log
    (prompt,) = [line for line in log.splitlines() if "prompt fold0" in line]
    assert "<|system|>" not in prompt
    assert (
        "<|user|>\\n<image>\\nТы внимательный ассистент. SYSTEM-MARKER-42.\\n\\nФамилия?" in prompt
    )


def test_model_without_chat_template_is_fatal(hf_python, shim_dir, tiny_model, tmp_path):  # noqa: F811
    model = model_variant(tiny_model, tmp_path, None)
    running = ModelWorker(hf_python, shim_dir, tmp_path / "worker.log")
    answer = running.start(hf_init(model))
    running.close()
    assert answer["type"] == "fatal" and "no chat template" in answer["message"]
