"""Engine-true speed: the same requests through the engine alone (A) and ``vlmhb run`` (B).

(A) drives the engine directly in one process of the model env, with the backend's own
engine settings (its ``load``), all requests at once: vLLM one ``LLM.chat`` over all of
them; hf its own ``generate`` over consecutive batches of the batch size. Opening the
images and rendering the chats are inside A's time, as they are inside B's.
(B) is ``vlmhb run`` of the same plan row with ``--isolation venv``; its generation time
is run.json's ``timings.generation_s`` (first request sent -> last answer received).
Repeats are interleaved (A, B, A, B, ...) after one warm-up of each; min and median are
printed, and B/A = A's time / B's time (B's speed as a share of the engine's).

The requests: 40 synthetic passports x 5 fields = 200, the shipped prompts, greedy,
``max_new_tokens`` 32, the tiny LLaVA (built locally on first use).
Run on demand::

    python benchmarks/engine_ratio.py --backend vllm --max-num-seqs 16
    python benchmarks/engine_ratio.py --backend vllm --max-num-seqs 256
    python benchmarks/engine_ratio.py --backend hf
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FIELDS = "surname,name,patronymic,birth_date,series_number"

ENGINE_ALONE = """
import json, sys, time
from vlmhb.worker.backends import load_backend
from vlmhb.worker.backends.chat import merged_generation
from vlmhb.worker.protocol import Init, Request

job = json.load(sys.stdin)
init = Init(**job["init"])
requests = [Request(**r) for r in job["requests"]]
backend = load_backend(init.backend)
backend.load(init)
answers = {}
start = time.perf_counter()
if init.backend == "vllm":
    chats = [backend.messages(r) for r in requests]
    params = [backend.sampling_params(merged_generation(backend.generation, r)) for r in requests]
    outputs = backend.llm.chat(chats, params, use_tqdm=False)
    answers = {r.id: o.outputs[0].text for r, o in zip(requests, outputs)}
else:
    size = job["batch_size"]
    for first in range(0, len(requests), size):
        batch = requests[first : first + size]
        for r, result in zip(batch, backend.generate(batch)):
            answers[r.id] = getattr(result, "text", str(result))
elapsed = time.perf_counter() - start
print(json.dumps({"generation_s": elapsed, "answers": answers}))
"""


def make_dataset(folder: Path, n_docs: int) -> Path:
    """``n_docs`` synthetic passports (clean), rendered once."""
    if not (folder / "annotations.jsonl").is_file():
        subprocess.run(
            [sys.executable, "-m", "vlmhb.cli", "data", "synth", str(folder),
             "--kind", "passport", "--n", str(n_docs), "--workers", "1"],
            check=True, capture_output=True,
        )  # fmt: skip
    return folder


def ensure_tiny_model() -> None:
    """The tiny LLaVA, built with the hf-cpu env (its builder does not import in vllm-cpu)."""
    from vlmhb.home import vlmhb_home
    from vlmhb.plan.catalogue import TINY_MODEL_DIR
    from vlmhb.run.isolation import child_python

    target = vlmhb_home() / TINY_MODEL_DIR
    if (target / "config.json").is_file():
        return
    python = child_python("venv", "hf-cpu")
    subprocess.run(
        [str(python.python), "-m", "vlmhb.worker.tiny_model", str(target)],
        env=python.environment(), check=True, capture_output=True,
    )  # fmt: skip


def write_plan(folder: Path, dataset: Path, backend: str, args: argparse.Namespace) -> Path:
    """The one-row plan both A and B answer."""
    load: dict[str, object] = {"device": "cpu", "dtype": "float32"}
    if backend == "vllm":
        load.update(
            max_model_len=512,
            kv_cache_memory_bytes=64 * 1024 * 1024,
            limit_mm_per_prompt={"image": 1},
            max_num_seqs=args.max_num_seqs,
            seed=0,
        )
    row = {
        "name": f"ratio-{backend}",
        "dataset": str(dataset),
        "backend": backend,
        "model": "tiny-llava",
        "mode": "field",
        "fields": FIELDS,
        "stages": "infer",
        "isolation": "venv",
        "max_new_tokens": str(args.max_new_tokens),
        "load": json.dumps(load),
    }
    if args.batch_size:
        row["batch_size"] = str(args.batch_size)
    plan = folder / "plan.csv"
    import csv

    with plan.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    return plan


def run_b(plan: Path, runs: Path) -> tuple[float, dict[str, str], dict]:
    """``vlmhb run`` in a fresh runs folder: generation time, answers, timings. The answer
    cache stays off: every repeat asks the same requests, which would all be hits."""
    subprocess.run(
        [sys.executable, "-m", "vlmhb.cli", "run", str(plan), "--runs-dir", str(runs),
         "--isolation", "venv", "--gpus", "", "--no-cache"],
        check=True, capture_output=True,
    )  # fmt: skip
    (run_json,) = runs.glob("*/run.json")
    record = json.loads(run_json.read_text("utf-8"))
    answers = {}
    for line in (run_json.parent / "answers.jsonl").read_text("utf-8").splitlines():
        data = json.loads(line)
        answers[data["id"]] = data["answer"]
    return record["timings"]["generation_s"], answers, record["timings"]


def engine_job(plan: Path, runs: Path) -> tuple[dict, list[str], dict[str, str]]:
    """A's input, from the same code path B used: the init, the requests, the child env."""
    from vlmhb.plan.plan_csv import load_plan
    from vlmhb.run.infer import init_message
    from vlmhb.run.isolation import child_python
    from vlmhb.run.prepare import iter_samples, prepare_run

    (run,) = load_plan(plan)
    prepared = prepare_run(run, runs)
    init = init_message(prepared)
    requests = [json.loads(s.request_line()) for s in iter_samples(prepared) if not s.problem]
    python = child_python("venv", prepared.env_name)
    job = {"init": vars(init), "requests": requests, "batch_size": init.batch_size or 8}
    return job, [str(python.python), "-c", ENGINE_ALONE], python.environment()


def run_a(job: dict, argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, str]]:
    """The engine alone, in one process of the model env."""
    done = subprocess.run(
        argv, input=json.dumps(job), env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"engine alone failed: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["generation_s"], result["answers"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--max-num-seqs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=0, help="plan batch_size (hf)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vlmhb-ratio-"))
    dataset = make_dataset(Path(tempfile.gettempdir()) / f"vlmhb-ratio-ds{args.docs}", args.docs)
    plan = write_plan(work, dataset, args.backend, args)
    ensure_tiny_model()
    run_b(plan, work / "runs-warmup")  # builds the env and the tiny model if needed
    job, argv, env = engine_job(plan, work / "runs-warmup")
    run_a(job, argv, env)  # warm-up
    a_times, b_times, mismatches, phases = [], [], 0, {}
    for repeat in range(args.repeats):
        a_s, a_answers = run_a(job, argv, env)
        b_s, b_answers, phases = run_b(plan, work / f"runs-{repeat}")
        a_times.append(a_s)
        b_times.append(b_s)
        mismatches += sum(a_answers[k] != b_answers.get(k) for k in a_answers)
        print(f"repeat {repeat}: A {a_s:.2f} s, B {b_s:.2f} s, B/A {a_s / b_s:.2f}", flush=True)
    label = f"{args.backend}" + (
        f" max_num_seqs {args.max_num_seqs}" if args.backend == "vllm" else ""
    )
    print(f"{label}: {len(job['requests'])} requests, max_new_tokens {args.max_new_tokens}")
    for name, times in (("A engine alone", a_times), ("B vlmhb run", b_times)):
        print(f"  {name}: min {min(times):.2f} s, median {statistics.median(times):.2f} s")
    print(
        f"  B/A (speed): min-based {min(a_times) / min(b_times):.2f}, "
        f"median-based {statistics.median(a_times) / statistics.median(b_times):.2f}"
    )
    print(f"  answers differing between A and B: {mismatches}")
    print(f"  B's last run.json timings: {json.dumps(phases)}")


if __name__ == "__main__":
    main()
