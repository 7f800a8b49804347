"""The sglang backend's request building and response mapping.

SGLang has no CPU path (hard CUDA requirements), so the engine cannot run here: these tests
exercise the pure functions that surround it, with output dicts in the shape SGLang's
``Engine.generate`` returns (``text`` + ``meta_info``), and the real worker's ``fatal`` when
the package is absent. The engine itself runs only on a GPU with SGLang's wheels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import run_worker_lines, write_png

from vlmhb.worker.backends.sglang import build_inputs, engine_kwargs, map_output, sampling_params
from vlmhb.worker.protocol import Init, Request, Response

ROOT = Path(__file__).resolve().parents[1]

# What Engine.generate returned for a batch of two (recorded shape: SGLang 0.4/0.5 meta_info).
RECORDED = [
    {
        "text": "Иванов",
        "meta_info": {
            "id": "5c1e",
            "prompt_tokens": 812,
            "completion_tokens": 4,
            "cached_tokens": 0,
            "finish_reason": {"type": "stop", "matched": 151645},
            "e2e_latency": 0.41,
        },
    },
    {
        "text": '{"surname": "Иванов", "name": "Пё',
        "meta_info": {
            "id": "5c1f",
            "prompt_tokens": 830,
            "completion_tokens": 16,
            "cached_tokens": 800,
            "finish_reason": {"type": "length", "length": 16},
        },
    },
]


def template(messages: list[dict]) -> str:
    """A stand-in chat template: one line per message, images as <image>."""
    lines = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            lines.append(f"{message['role']}: {content}")
        else:
            parts = ["<image>" if p["type"] == "image" else p["text"] for p in content]
            lines.append(f"{message['role']}: {' '.join(parts)}")
    return "\n".join(lines) + "\nassistant:"


def test_engine_kwargs_from_load_options() -> None:
    init = Init(
        backend="sglang",
        model="/models/Qwen2.5-VL-7B-Instruct",
        load={
            "tp_size": 2,
            "mem_fraction_static": 0.8,
            "context_length": 8192,
            "engine_args": {"disable_radix_cache": True},
        },
    )
    assert engine_kwargs(init) == {
        "model_path": "/models/Qwen2.5-VL-7B-Instruct",
        "log_level": "error",
        "tp_size": 2,
        "mem_fraction_static": 0.8,
        "context_length": 8192,
        "disable_radix_cache": True,
    }


def test_sampling_params_are_greedy_by_default() -> None:
    assert sampling_params({}) == {"max_new_tokens": 512, "temperature": 0.0}
    assert sampling_params(
        {"max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9, "stop": ["\n"]}
    ) == {
        "max_new_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["\n"],
    }


def test_build_inputs_carries_system_images_and_overrides() -> None:
    batch = [
        Request(
            id="a", images=["/d/p1.png", "/d/p2.png"], prompt="Фамилия?", system="Отвечай кратко."
        ),
        Request(
            id="b",
            images=["/d/q.png"],
            prompt="JSON",
            generation={"max_new_tokens": 16, "fields": ["x"], "mode": "document"},
        ),
    ]
    prompts, images, params = build_inputs(batch, template, {"max_new_tokens": 128})
    assert prompts[0] == "system: Отвечай кратко.\nuser: <image> <image> Фамилия?\nassistant:"
    assert prompts[1] == "user: <image> JSON\nassistant:"
    assert images == [["/d/p1.png", "/d/p2.png"], ["/d/q.png"]]
    assert params == [
        {"max_new_tokens": 128, "temperature": 0.0},
        {"max_new_tokens": 16, "temperature": 0.0},
    ]
    _, no_images, _ = build_inputs([Request(id="t", images=[], prompt="hi")], template, {})
    assert no_images is None
    mixed = [
        Request(id="t", images=[], prompt="hi"),
        Request(id="i", images=["/d/q.png"], prompt="?"),
    ]
    assert build_inputs(mixed, template, {})[1] == [None, ["/d/q.png"]]


def test_map_output_tokens_finish_reason_and_abort() -> None:
    first = map_output("a", RECORDED[0], latency_s=1.5)
    assert first == Response(
        id="a",
        text="Иванов",
        latency_s=0.41,
        prompt_tokens=812,
        output_tokens=4,
        finish_reason="stop",
    )
    second = map_output("b", RECORDED[1], latency_s=1.5)
    assert isinstance(second, Response)
    assert (
        second.finish_reason == "length" and second.output_tokens == 16 and second.latency_s == 1.5
    )
    aborted = map_output(
        "c",
        {
            "text": "",
            "meta_info": {"finish_reason": {"type": "abort", "message": "prompt too long"}},
        },
    )
    assert aborted == "sglang aborted c: prompt too long"
    bare = map_output("d", {"text": "x", "meta_info": {"finish_reason": "stop"}})
    assert (
        isinstance(bare, Response) and bare.finish_reason == "stop" and bare.prompt_tokens is None
    )


def test_missing_sglang_is_a_fatal_naming_it() -> None:
    replies, _ = run_worker_lines(
        [{"type": "init", "protocol": 1, "backend": "sglang", "model": "x"}]
    )
    message = replies[0]
    assert (
        message["type"] == "fatal"
        and "sglang" in message["message"]
        and "missing" in message["message"]
    )


class FakeAsyncEngine:
    """Stands in for ``sglang.Engine`` (which needs CUDA, absent here): its ``async_generate``
    takes as long as the prompt says, and counts how many requests it holds at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.server_args = type("Args", (), {"max_running_requests": 6})()

    async def async_generate(self, prompt: str, image_data: Any, sampling_params: dict) -> dict:
        import asyncio

        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01 * prompt.count("wait"))
            if "boom" in prompt:
                raise RuntimeError("engine refused the request")
            kind = "abort" if "abort" in prompt else "stop"
            return {
                "text": f"{sampling_params['max_new_tokens']}:{image_data}",
                "meta_info": {"prompt_tokens": len(prompt), "completion_tokens": 2,
                              "finish_reason": {"type": kind, "message": "too long"}},
            }  # fmt: skip
        finally:
            self.running -= 1


def test_continuous_path_sends_each_request_as_it_arrives(tmp_path: Path) -> None:
    from vlmhb.worker.backends.sglang import SGLangBackend

    image = tmp_path / "a.png"
    write_png(image)
    backend = SGLangBackend()
    backend.engine, backend.render = FakeAsyncEngine(), template
    backend.defaults = {"max_new_tokens": 7}
    backend.start_requests(Init(backend="sglang", model="m"))
    assert backend.capacity() == 6  # the engine's max_running_requests
    prompts = {"slow": "wait wait wait", "fast": "wait", "boom": "boom", "cut": "abort"}
    for rid, prompt in prompts.items():
        assert backend.submit(Request(id=rid, images=[str(image)], prompt=prompt)) is None
    refused = backend.submit(Request(id="gone", images=[str(tmp_path / "no.png")], prompt="x"))
    assert "image not found" in str(refused)
    assert backend.pending() == 4
    order = []
    results = {}
    while backend.pending():
        for finished in backend.poll():
            order.append(finished.id)
            results[finished.id] = finished.result
    assert backend.engine.most == 4  # all in the engine at once, not a batch at a time
    assert order.index("fast") < order.index("slow")  # each answer as soon as it is done
    slow = results["slow"]
    assert isinstance(slow, Response) and slow.text == f"7:{[str(image)]}"
    assert slow.latency_s >= 0.03 and slow.prompt_tokens > len(prompts["slow"])
    assert results["boom"] == "RuntimeError: engine refused the request"
    assert results["cut"] == "sglang aborted cut: too long"
