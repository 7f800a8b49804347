#!/usr/bin/env python3
"""GPU check: the tiny random LLaVA through the real hf worker on CUDA, against CPU float32.

Run from a copy of the repo on a machine whose Python has torch (CUDA build), transformers,
tokenizers, safetensors and Pillow; no network needed::

    python scripts/gpu_check.py                 # cuda: float32, float16, bfloat16
    python scripts/gpu_check.py --device cpu    # the same path on the CPU (to test the script)

It builds the tiny model into a temp folder (``python -m vlmhb.worker.tiny_model``), draws four
synthetic document images with Pillow, runs ``python -m vlmhb.worker`` (backend ``hf``) once
on the CPU in float32 (the reference) and once per dtype on the chosen device, each time as
one window of four requests (one batched ``generate``), and prints one JSON object: device
name, load seconds, batch latency, tokens/s, and how the greedy tokens compare with the CPU
float32 reference (first token, whole sequence, common prefix length).

Half precision is expected to drift from float32 after a few tokens on a random model (near
ties among logits); float32 on CUDA should match closely. It exits 1 when a worker fails to
load or answer, when fewer than half of the first tokens in any dtype match the reference, or
when float32 on the device differs in a first token. Under two minutes on a GPU.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout: vlmhb's stdlib-only worker driver

from vlmhb.run.child_env import child_environment  # noqa: E402
from vlmhb.run.worker_process import (  # noqa: E402
    WorkerCommand,
    WorkerDied,
    WorkerFatal,
    WorkerProcess,
)
from vlmhb.worker import protocol  # noqa: E402

PROMPTS = ["Фамилия?", "Дата рождения владельца паспорта?", "Extract every field as JSON.", "ИНН"]
SYSTEM = "Ты внимательный ассистент."
MAX_NEW_TOKENS = 16


def child_env() -> dict[str, str]:
    """The worker's minimal environment (vlmhb's own), offline, with vlmhb's code shim."""
    return child_environment(
        {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}, passed=("LD_LIBRARY_PATH",)
    )


def draw_images(folder: Path, count: int = 4) -> list[Path]:
    """``count`` small synthetic 'documents', different in size, colour and text."""
    from PIL import Image, ImageDraw

    paths = []
    for i in range(count):
        image = Image.new("RGB", (96 + 16 * i, 64 + 8 * i), (250 - 40 * i, 240, 200 + 10 * i))
        draw = ImageDraw.Draw(image)
        draw.rectangle((4 + 3 * i, 4, 40 + 9 * i, 20 + 5 * i), fill=(20 * i, 60, 120))
        draw.text((6, 30), f"Doc {i}", fill=(0, 0, 0))
        path = folder / f"doc{i}.png"
        image.save(path)
        paths.append(path)
    return paths


def run_worker(
    model: Path, images: list[Path], device: str, dtype: str, env: dict[str, str], log: Path
) -> dict[str, Any]:
    """Load the tiny model, answer one window of four requests, return what happened."""
    command = WorkerCommand([sys.executable, "-m", "vlmhb.worker"], env)
    result: dict[str, Any] = {"device_requested": device, "dtype": dtype}
    log.unlink(missing_ok=True)
    worker = WorkerProcess(command, log)
    try:
        init = protocol.Init(
            backend="hf",
            model=str(model),
            load={"device": device, "dtype": dtype, "log_tokens": True},
            generation={"max_new_tokens": MAX_NEW_TOKENS},
            batch_size=4,
        )
        started = time.perf_counter()
        ready = worker.start(init, timeout=240)
        result["worker_start_s"] = round(time.perf_counter() - started, 3)
        result.update(device=ready.device, load_s=round(ready.load_s, 3), versions=ready.versions)
        for i in range(4):
            worker.send(
                protocol.Request(
                    id=f"q{i}", images=[str(images[i])], prompt=PROMPTS[i], system=SYSTEM
                )
            )
        answers = [_answer(worker, 120) for _ in range(4)]
        errors = [a for a in answers if not isinstance(a, protocol.Response)]
        if errors:
            result["error"] = f"{len(errors)} requests failed: {errors[0]}"
            return result
        responses = [a for a in answers if isinstance(a, protocol.Response)]
        latency = max(a.latency_s for a in responses)
        tokens = sum(a.output_tokens or 0 for a in responses)
        result.update(
            batch_latency_s=round(latency, 4),
            output_tokens=tokens,
            tokens_per_s=round(tokens / latency, 1) if latency else None,
            finish_reasons=sorted({str(a.finish_reason) for a in responses}),
        )
    except (WorkerFatal, WorkerDied, TimeoutError) as exc:
        result["error"] = f"{exc}; log {log}"
    finally:
        result["exit_code"] = worker.stop(grace_s=60)
    logged = re.findall(r"^\[hf\] tokens (\S+): (\[.*\])$", log.read_text(), re.MULTILINE)
    result["tokens"] = {rid: ast.literal_eval(ids) for rid, ids in logged}
    return result


def _answer(worker: WorkerProcess, timeout: float) -> protocol.Message:
    message = worker.receive(timeout)
    if message is None:
        raise TimeoutError(f"worker silent for {timeout:.0f} s")
    return message


def compare(run: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """How a run's greedy tokens compare with the CPU float32 reference."""
    ids = sorted(reference["tokens"])
    first = sum(
        bool(run["tokens"].get(i)) and run["tokens"][i][:1] == reference["tokens"][i][:1]
        for i in ids
    )
    whole = sum(run["tokens"].get(i) == reference["tokens"][i] for i in ids)
    prefixes = []
    for i in ids:
        mine, theirs, n = run["tokens"].get(i, []), reference["tokens"][i], 0
        while n < min(len(mine), len(theirs)) and mine[n] == theirs[n]:
            n += 1
        prefixes.append(n)
    return {
        "first_token_equal": f"{first}/{len(ids)}",
        "sequence_equal": f"{whole}/{len(ids)}",
        "common_prefix_tokens": prefixes,
        "first_ok": first,
        "n": len(ids),
    }


def preflight(device: str) -> list[str]:
    """What this Python lacks for the check (packages, a CUDA GPU), as readable lines."""
    import importlib.util

    needed = {
        "torch": "torch",
        "transformers": "transformers",
        "tokenizers": "tokenizers",
        "safetensors": "safetensors",
        "PIL": "pillow",
        "jinja2": "jinja2",
    }
    missing = [
        f"package {pkg} not importable in {sys.executable}"
        for module, pkg in needed.items()
        if importlib.util.find_spec(module) is None
    ]
    if not missing and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            missing.append(f"torch {torch.__version__} sees no CUDA GPU (use --device cpu?)")
    return missing


def main(argv: list[str] | None = None) -> int:
    """Build, run, compare, print JSON; exit 1 on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--dtypes", default="float32,float16,bfloat16")
    parser.add_argument("--keep", type=Path, help="write model, images and logs here instead")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    missing = preflight(args.device)
    if missing:
        print(json.dumps({"ok": False, "problems": missing}, ensure_ascii=False, indent=1))
        return 1
    with tempfile.TemporaryDirectory(prefix="vlmhb-gpu-check-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = child_env()
        model = work / "tiny-llava"
        build = subprocess.run(
            [sys.executable, "-m", "vlmhb.worker.tiny_model", str(model)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if build.returncode != 0:
            print(
                json.dumps(
                    {
                        "ok": False,
                        "error": "tiny model build failed",
                        "stderr": build.stderr[-3000:],
                    },
                    ensure_ascii=False,
                    indent=1,
                )
            )
            return 1
        images = draw_images(work)
        reference = run_worker(model, images, "cpu", "float32", env, work / "cpu-float32.log")
        runs = [
            run_worker(model, images, args.device, dtype, env, work / f"{args.device}-{dtype}.log")
            for dtype in args.dtypes.split(",")
        ]
    problems = [
        f"{r['device_requested']} {r['dtype']}: {r['error']}"
        for r in [reference, *runs]
        if r.get("error")
    ]
    if not problems:
        for run in runs:
            run["vs_cpu_float32"] = compare(run, reference)
            first_ok, n = run["vs_cpu_float32"].pop("first_ok"), run["vs_cpu_float32"].pop("n")
            if first_ok * 2 < n or (run["dtype"] == "float32" and first_ok < n):
                problems.append(f"{run['dtype']}: first tokens differ from CPU float32")
    for run in [reference, *runs]:
        run.pop("tokens", None)
    report = {
        "ok": not problems,
        "problems": problems,
        "device": next((r.get("device") for r in runs if r.get("device")), None),
        "max_new_tokens": MAX_NEW_TOKENS,
        "note": "random tiny model: half precision may drift from float32 after a few tokens",
        "reference": reference,
        "runs": runs,
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
