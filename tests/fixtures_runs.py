"""Realistic fake run folders, for the report tests and benchmark: what real runs write.

A campaign of many models on GPUs cannot run here, so this module writes run folders in the
shape the runner and the metrics stage write them (names from ``vlmhb.run.files``, field keys
from ``vlmhb.form_labels``, the columns and metric rows of real tables, directions from the
metrics registry): ``run.json``, ``references.jsonl``, ``answers.jsonl``,
``resources.parquet`` and ``metrics/{by_sample,by_field,by_doc_type,by_tag,overall}`` with
``metrics.json``, with Russian values, some failed samples, and the gaps a real campaign has
(a run without metrics, a CPU-only run without GPU columns, a run without a resources file).
``tests/test_report_tables.py`` checks the shape against a real echo run. Deterministic for a
given seed.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from vlmhb.metrics._registry import directions
from vlmhb.run.files import (
    ANSWERS,
    METRICS_DIR,
    METRICS_JSON,
    REFERENCES,
    RESOURCES,
    RUN_JSON,
    metrics_table,
)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SURNAMES = ["Иванов", "Петрова", "Сидоров", "Кузнецова", "Смирнов", "Ёлкин", "Попова", "Волков"]
NAMES = ["Алексей", "Мария", "Сергей", "Анна", "Дмитрий", "Ольга", "Пётр", "Елена"]
CITIES = ["г. Москва", "г. Санкт-Петербург", "г. Казань", "г. Новосибирск", "г. Екатеринбург"]
DOC_FIELDS = {
    "passport": ["surname", "name", "birth_date", "series_number", "issued_by"],
    "snils": ["surname", "name", "snils"],
    "invoice": ["seller", "seller_inn", "total", "date"],
}
TAGS = ["clean", "blur", "noise", "rotated"]
NORMALIZATION = {
    "nfc": True,
    "unify_punctuation": True,
    "fold_homoglyphs": True,
    "casefold": True,
    "yo_to_ye": True,
    "strip_label_echo": True,
    "collapse_whitespace": True,
    "strip_edge_punctuation": True,
    "field_normalizers": True,
    "two_digit_year_pivot": 30,
}


@dataclass(frozen=True)
class RunSpec:
    """One fake run: who ran, how well, and which stages it lacks."""

    model: str
    backend: str
    prompts: str = "default"
    mode: str = "field"
    skill: float = 0.8
    error_rate: float = 0.02
    gpus: int = 1
    samples_per_s: float = 5.0
    vram_mb: float = 8000.0
    has_metrics: bool = True
    has_resources: bool = True
    status: str = "done"
    nested_plan: bool = False
    extra: dict = field(default_factory=dict)


DEFAULT_SPECS = [
    RunSpec("tesseract-rus", "tesseract", skill=0.55, gpus=0, samples_per_s=12.0, vram_mb=0),
    RunSpec("Qwen/Qwen2-VL-2B-Instruct", "hf", skill=0.78, samples_per_s=4.0, vram_mb=6200),
    RunSpec(
        "Qwen/Qwen2-VL-2B-Instruct",
        "vllm",
        mode="document",
        skill=0.80,
        samples_per_s=20.0,
        vram_mb=21000,
        nested_plan=True,
    ),
    RunSpec(
        "Qwen/Qwen2-VL-7B-Instruct", "vllm", skill=0.92, samples_per_s=9.0, vram_mb=30000, gpus=2
    ),
    RunSpec(
        "llava-tiny",
        "hf",
        prompts="short",
        skill=0.30,
        samples_per_s=30.0,
        vram_mb=900,
        has_resources=False,
    ),
    RunSpec(
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "sglang",
        skill=0.85,
        samples_per_s=15.0,
        vram_mb=12000,
        has_metrics=False,
        status="failed",
    ),
]


def make_dataset(
    root: Path,
    n_docs: int,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (480, 320),
    n_images: int | None = None,
) -> list[dict]:
    """Write document images under ``root/dataset`` and return the reference records.

    ``n_images`` below ``n_docs`` reuses images (cheaper for large benchmarks).
    """
    rng = random.Random(seed)
    img_dir = root / "dataset" / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(FONT, 18)
    n_images = n_docs if n_images is None else min(n_images, n_docs)
    refs: list[dict] = []
    for i in range(n_docs):
        doc_type = ["passport", "snils", "invoice"][i % 3]
        values = _field_values(doc_type, rng)
        doc_id = f"{doc_type}-{i:05d}"
        img_path = img_dir / f"doc-{i % n_images:05d}.png"
        if i < n_images:
            _draw_document(img_path, doc_type, values, font, image_size, rng)
        tags = ["clean"] if rng.random() < 0.5 else [rng.choice(TAGS[1:])]
        text = "\n".join(f"{k}: {v}" for k, v in values.items())
        refs.append(
            {
                "doc_id": doc_id,
                "doc_type": doc_type,
                "fields": values,
                "text": text,
                "tags": tags,
                "images": [str(img_path.resolve())],
                "field_types": {},  # untyped: no validator applies
                "generated_by": "vlmhb-synth-1",  # made-up people: reports may show them
            }
        )
    return refs


def _field_values(doc_type: str, rng: random.Random) -> dict[str, str]:
    surname, name = rng.choice(SURNAMES), rng.choice(NAMES)
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1950, 2005)
    if doc_type == "passport":
        return {
            "surname": surname,
            "name": name,
            "birth_date": f"{day:02d}.{month:02d}.{year}",
            "series_number": f"{rng.randint(1000, 9999)} {rng.randint(100000, 999999)}",
            "issued_by": f"ГУ МВД России по {rng.choice(CITIES)}",
        }
    if doc_type == "snils":
        digits = [rng.randint(0, 9) for _ in range(11)]
        snils = "".join(map(str, digits))
        return {
            "surname": surname,
            "name": name,
            "snils": f"{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}",
        }
    return {
        "seller": f"ООО «{rng.choice(SURNAMES)} и партнёры»",
        "seller_inn": str(rng.randint(10**9, 10**10 - 1)),
        "total": f"{rng.randint(100, 99999)},{rng.randint(0, 99):02d} ₽",
        "date": f"{day:02d}.{month:02d}.2024",
    }


def _draw_document(
    path: Path,
    doc_type: str,
    values: dict[str, str],
    font: ImageFont.FreeTypeFont,
    size: tuple[int, int],
    rng: random.Random,
) -> None:
    img = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([4, 4, size[0] - 5, size[1] - 5], outline=(120, 90, 60), width=2)
    draw.text(
        (16, 12),
        {"passport": "ПАСПОРТ", "snils": "СНИЛС", "invoice": "СЧЁТ"}[doc_type],
        fill=(150, 30, 30),
        font=font,
    )
    for j, (k, v) in enumerate(values.items()):
        draw.text((16, 44 + 26 * j), f"{k}: {v}", fill=(20, 20, 20), font=font)
    for _ in range(20):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.point((x, y), fill=(rng.randrange(255),) * 3)
    img.save(path)


def _corrupt(value: str, rng: random.Random) -> str:
    """A plausible wrong reading: a swapped letter, a dropped char, Latin homoglyph, or junk."""
    if not value:
        return "—"
    kind = rng.randrange(4)
    i = rng.randrange(len(value))
    if kind == 0:
        return value[:i] + rng.choice("аеоиыкнр0123") + value[i + 1 :]
    if kind == 1:
        return value[:i] + value[i + 1 :]
    if kind == 2:
        return (
            value.replace("о", "o").replace("а", "a")
            if ("о" in value or "а" in value)
            else value + "."
        )
    return value[: max(1, len(value) // 2)] + " ??"


def _norm(s: str) -> str:
    return " ".join(s.replace("ё", "е").replace("Ё", "Е").casefold().split())


def _ci(values: np.ndarray) -> tuple[float, float, float]:
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=0)) / max(1.0, np.sqrt(len(values)))
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def _long(df: pd.DataFrame, key: str | None, mode: str) -> pd.DataFrame:
    rows: list[dict] = []
    groups = [((), df)] if key is None else df.groupby(key, sort=True)
    for name, g in groups:
        base = {} if key is None else {key: name if not isinstance(name, tuple) else name[0]}
        err_chars = (g["cer"] * g["reference_norm"].str.len().clip(lower=1)).sum()
        ref_chars = g["reference_norm"].str.len().clip(lower=1).sum()
        metrics = {
            "exact_match": _ci(g["exact"].to_numpy(float)),
            "anls": _ci(g["anls"].to_numpy(float)),
            "ned": _ci(g["ned"].to_numpy(float)),
            "cer_micro": (float(err_chars / ref_chars),) * 3,
            "cer_macro": _ci(g["cer"].to_numpy(float)),
            "wer_micro": _ci(g["wer"].to_numpy(float)),
            "wer_macro": _ci(g["wer"].to_numpy(float)),
            "valid_but_wrong": (math.nan,) * 3,  # no typed field in these fixtures
            "invalid_rate": (math.nan,) * 3,
            "exact_match_raw": _ci(g["exact_raw"].to_numpy(float)),
            "cer_raw_micro": _ci(g["cer_raw"].to_numpy(float)),
            "missing_answer_rate": _ci(g["missing"].to_numpy(float)),
            "mixed_script_answers": (float(g["mixed_script"].sum()),) * 3,
        }
        if mode == "document":
            per_doc = g.groupby("doc_id")["json_ok"].first().to_numpy(float)
            metrics["json_parse_failure_rate"] = _ci(1.0 - per_doc)
            metrics["field_f1"] = _ci(g["exact"].to_numpy(float))
        for metric, (v, lo, hi) in metrics.items():
            rows.append(
                {**base, "metric": metric, "value": v, "ci_low": lo, "ci_high": hi, "n": len(g)}
            )
    return pd.DataFrame(rows)


def write_run(
    root: Path, spec: RunSpec, refs: list[dict], *, seed: int = 0, start: float = 1_764_300_000.0
) -> Path:
    """Write one run folder for ``spec`` over the reference records ``refs``; return its path."""
    rng = random.Random(f"{seed}-{spec.model}-{spec.backend}-{spec.prompts}-{spec.mode}")
    slug = f"{spec.model.split('/')[-1]}-{spec.backend}-{spec.prompts}-{spec.mode}".lower()
    run_id = f"20261128-{slug}-{seed:04d}"
    run_dir = root / "runs" / run_id
    (run_dir / METRICS_DIR).mkdir(parents=True, exist_ok=True)
    with open(run_dir / REFERENCES, "w", encoding="utf-8") as f:
        for r in refs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    samples: list[dict] = []
    answers: list[dict] = []
    latencies: list[float] = []
    for r in refs:
        doc_fail = rng.random() < spec.error_rate
        json_ok = not doc_fail and (spec.mode != "document" or rng.random() > 0.05)
        doc_answer: dict[str, str] = {}
        for name, ref in r["fields"].items():
            if doc_fail or (spec.mode == "document" and not json_ok):
                ans = ""
            elif rng.random() < spec.skill:
                ans = ref if rng.random() > 0.1 else ref.upper()
            else:
                ans = _corrupt(ref, rng)
            doc_answer[name] = ans
            rn, an = _norm(ref), _norm(ans)
            ned = Levenshtein.normalized_distance(rn, an)
            samples.append(
                {
                    "sample_id": f"{r['doc_id']}:{name}",
                    "doc_id": r["doc_id"],
                    "doc_type": r["doc_type"],
                    "field": name,
                    "tags": ";".join(r["tags"]),
                    "reference": ref,
                    "answer": ans,
                    "reference_norm": rn,
                    "answer_norm": an,
                    "missing": False,
                    "error": "worker timeout after 120 s" if doc_fail else None,
                    # field validity (metrics/_validity.py): these fixtures' fields are untyped
                    "field_type": "",
                    "validity": None,
                    "invalid_why": None,
                    "exact": float(rn == an),
                    "anls": (1 - ned) if ned < 0.5 else 0.0,
                    "ned": ned,
                    "cer": Levenshtein.distance(rn, an) / max(1, len(rn)),
                    "wer": 0.0 if rn == an else 1.0,
                    "valid_but_wrong": math.nan,
                    "invalid": math.nan,
                    "cer_raw": Levenshtein.distance(ref, ans) / max(1, len(ref)),
                    "exact_raw": float(ref == ans),
                    "mixed_script": False,
                    **(
                        {"json_ok": json_ok, "field_present": bool(ans)}
                        if spec.mode == "document"
                        else {}
                    ),
                }
            )
            if spec.mode == "field":
                lat = rng.lognormvariate(np.log(1 / spec.samples_per_s), 0.3)
                latencies.append(lat)
                answers.append(
                    _answer_line(f"{r['doc_id']}:{name}", r, name, spec, ans, doc_fail, lat)
                )
        if spec.mode == "document":
            lat = rng.lognormvariate(np.log(1 / spec.samples_per_s), 0.3)
            latencies.append(lat)
            text = (
                ""
                if doc_fail
                else (
                    json.dumps(doc_answer, ensure_ascii=False) if json_ok else "{'фамилия': Иванов"
                )
            )
            answers.append(_answer_line(r["doc_id"], r, None, spec, text, doc_fail, lat))
    with open(run_dir / ANSWERS, "w", encoding="utf-8") as f:
        for a in answers:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")

    duration = len(answers) / spec.samples_per_s
    resources = _resources(spec, duration, rng) if spec.has_resources else None
    if resources is not None:
        resources.to_parquet(run_dir / RESOURCES, index=False)
    record = _run_record(spec, run_id, root, refs, answers, latencies, duration, start, resources)
    (run_dir / RUN_JSON).write_text(json.dumps(record, ensure_ascii=False, indent=1), "utf-8")

    if spec.has_metrics:
        by_sample = pd.DataFrame(samples)
        by_sample.to_parquet(run_dir / metrics_table("by_sample"), index=False)
        tag_rows = by_sample.assign(tag=by_sample["tags"].str.split(";")).explode("tag")
        for name, key, frame in [
            ("by_field", "field", by_sample),
            ("by_doc_type", "doc_type", by_sample),
            ("by_tag", "tag", tag_rows),
            ("overall", None, by_sample),
        ]:
            table = _long(frame, key, spec.mode)
            table.to_parquet(run_dir / metrics_table(name), index=False)
            table.to_csv(run_dir / metrics_table(name, "csv"), index=False)
        overall = _long(by_sample, None, spec.mode)
        scores = [*overall["metric"], "exact", "anls", "ned", "cer", "wer", "cer_raw", "exact_raw"]
        (run_dir / METRICS_DIR / METRICS_JSON).write_text(
            json.dumps(
                {
                    "version": 1,
                    "mode": spec.mode,
                    "normalization": NORMALIZATION,
                    "metrics": ["exact_match", "anls", "ned", "cer", "wer"],
                    "higher_is_better": directions(scores),
                    "versions": {"python": "3.11.7", "rapidfuzz": "3.14.6"},
                    "n_samples": len(by_sample),
                    "n_docs": int(by_sample["doc_id"].nunique()),
                    "overall": dict(zip(overall["metric"], overall["value"], strict=True)),
                }
            ),
            "utf-8",
        )
    else:
        (run_dir / METRICS_DIR).rmdir()
    return run_dir


def _answer_line(
    sid: str, ref: dict, name: str | None, spec: RunSpec, ans: str, fail: bool, lat: float
) -> dict:
    return {
        "version": 1,
        "id": sid,
        "doc_id": ref["doc_id"],
        "doc_type": ref["doc_type"],
        "field": name,
        "mode": spec.mode,
        "prompt": "Извлеки поле из документа.",
        "answer": ans,
        "error": "worker timeout after 120 s" if fail else None,
        "latency_s": round(lat, 4),
        "prompt_tokens": 812,
        "output_tokens": 7,
        "finish_reason": None if fail else "stop",
        "ttft_s": None,
        "attempt": 1,
    }


def _resources(spec: RunSpec, duration: float, rng: random.Random) -> pd.DataFrame:
    n = max(5, min(int(duration) + 1, 2000))
    t = np.linspace(0.0, duration, n)
    gen = np.random.default_rng(rng.randrange(2**32))
    data: dict[str, np.ndarray] = {
        "t": t,
        "rss_mb": 1500 + 50 * np.sin(t / 30) + gen.normal(0, 5, n),
        "cpu_pct": np.clip(gen.normal(60, 15, n), 0, 400),
        "threads": np.full(n, 12.0),
        "host_ram_used_mb": 64000 + gen.normal(0, 50, n),
    }
    for i in range(spec.gpus):
        ramp = np.minimum(1.0, t / max(1.0, duration * 0.05))
        data[f"gpu{i}_mem_used_mb"] = (
            spec.vram_mb / spec.gpus * ramp * (0.95 + 0.05 * gen.random(n))
        )
        data[f"gpu{i}_sm_util"] = np.clip(gen.normal(80, 10, n) * ramp, 0, 100)
        data[f"gpu{i}_power_w"] = 60 + 250 * ramp * gen.random(n)
    return pd.DataFrame(data)


def _run_record(
    spec: RunSpec,
    run_id: str,
    root: Path,
    refs: list[dict],
    answers: list[dict],
    latencies: list[float],
    duration: float,
    start: float,
    resources: pd.DataFrame | None,
) -> dict:
    lat = np.array(latencies) if latencies else np.array([np.nan])
    n_docs = len(refs)
    timings = {  # the phases vlmhb.run.timings records; throughput is over generation
        "env_prepare_s": 0.05,
        "worker_start_s": round(0.2 * duration, 3),
        "load_s": round(0.18 * duration, 3),
        "ttfa_s": round(0.01 * duration, 3),
        "generation_s": round(0.7 * duration, 3),
        "teardown_s": round(0.1 * duration, 3),
        "wall_s": round(duration, 3),
    }
    summary: dict = {
        "samples_per_s": round(len(answers) / timings["generation_s"], 3),
        "latency_p50_s": float(np.percentile(lat, 50)),
        "latency_p95_s": float(np.percentile(lat, 95)),
    }
    if spec.gpus and resources is not None:
        mem = resources[[c for c in resources if c.endswith("_mem_used_mb")]].sum(axis=1)
        power = resources[[c for c in resources if c.endswith("_power_w")]].sum(axis=1)
        energy = float((getattr(np, "trapezoid", None) or np.trapz)(power, resources["t"]))
        summary.update(
            vram_peak_mb=float(mem.max()),
            energy_j=energy,
            energy_per_doc_j=energy / n_docs,
            gpu_status="ok",
        )
    elif not spec.gpus:
        summary["gpu_status"] = "no NVML library"
    plan = {
        "model": spec.model,
        "backend": spec.backend,
        "prompts": f"prompts/{spec.prompts}.csv",
        "mode": spec.mode,
        "dataset": str(root / "dataset"),
    }
    record = {
        "version": 1,
        "run_id": run_id,
        "plan_row": plan,
        "source": f"{root / 'plan.csv'}:2",
        "dataset": str(root / "dataset"),
        "dataset_name": "dataset",
        "dataset_hash": "0f1e2d3c4b5a",
        "model_path": spec.model,
        "isolation": "venv",
        "status": spec.status,
        "started_at": start,
        "finished_at": start + duration,
        "counts": {
            "documents": n_docs,
            "samples": len(answers),
            "answered": len(answers),
            "errors": sum(1 for a in answers if a["error"]),
        },
        "resources": summary,
        "timings": timings,
        **spec.extra,
    }
    if not spec.nested_plan:
        record.update({k: v for k, v in plan.items() if k != "dataset"})
    return record


def make_runs(
    root: Path,
    specs: list[RunSpec] | None = None,
    *,
    n_docs: int = 12,
    seed: int = 0,
    n_images: int | None = None,
    image_size: tuple[int, int] = (480, 320),
) -> list[Path]:
    """Write a dataset and one run folder per spec under ``root``; return the run folders."""
    refs = make_dataset(root, n_docs, seed=seed, n_images=n_images, image_size=image_size)
    return [write_run(root, spec, refs, seed=seed) for spec in (specs or DEFAULT_SPECS)]
