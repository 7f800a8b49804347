"""The model catalogue: known vision-language models, which backends run them, in which env.

A plan row names its model as a catalogue key (``qwen2.5-vl-7b``), a Hugging Face id
(``Qwen/Qwen2.5-VL-7B-Instruct``), a local folder, or a VLMHyperBench v0.1 name
(``Qwen2.5-VL-3B-Instruct`` with framework ``Hugging Face``); ``resolve_model`` turns any of
them into what the worker loads and the env it runs in.

Weights are never part of vlmhb: they come from the user's Hugging Face cache
(``HF_HOME``/``HF_HUB_CACHE``, passed to the worker) or a local path. With ``HF_HUB_OFFLINE=1``
nothing is fetched and a model missing from the cache fails at the worker's ``init`` with the
id and where it looked (that check lives in the ``hf`` backend). ``min_vram_gb`` is a rough
figure for bf16 weights plus a modest KV cache at batch 1, to pick a GPU, not a promise.

Standard library only, so ``vlmhb models`` answers at once.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from vlmhb.home import vlmhb_home

# The env a backend uses for a model the catalogue does not know.
DEFAULT_ENVS: dict[str, str] = {
    "echo": "echo",
    "tesseract": "tesseract",
    "hf": "hf-cpu",
    "vllm": "vllm-cpu",
    "sglang": "sglang",
    "openai": "echo",
    "vllm-server": "vllm-cpu",
    "sglang-server": "sglang",
}
# VLMHyperBench v0.1 ``framework`` column → vlmhb backend.
V01_FRAMEWORKS: dict[str, str] = {
    "Hugging Face": "hf",
    "HuggingFace": "hf",
    "transformers": "hf",
    "vLLM": "vllm",
    "SGLang": "sglang",
    "OpenAI": "openai",
    "Tesseract": "tesseract",
}
TINY_MODEL_DIR = "models/tiny-llava"  # under $VLMHB_HOME; built by vlmhb.worker.tiny_model

_GPU = {
    "hf": "hf-qwen",
    "vllm": "vllm",
    "sglang": "sglang",
    "openai": "echo",
    "vllm-server": "vllm",
    "sglang-server": "sglang",
}
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry: where the weights are and how to run them."""

    key: str
    hf_id: str
    family: str
    backends: tuple[str, ...]
    envs: dict[str, str] = field(default_factory=dict)
    min_vram_gb: float = 0.0
    notes: str = ""
    # Weights built on this machine rather than downloaded: ``python -m <build_module> PATH``
    # run in the model's env writes them to ``$VLMHB_HOME/<local_dir>`` on first use.
    build_module: str = ""
    local_dir: str = ""
    # The env that builds them (its packages can; the run's own env may not, e.g. vllm-cpu
    # lacks what the tiny model's processor needs); empty: the run's own env.
    build_env: str = ""

    def env_for(self, backend: str) -> str:
        """The env this model runs in under ``backend``."""
        return self.envs.get(backend) or DEFAULT_ENVS.get(backend, backend)


@dataclass(frozen=True)
class ResolvedModel:
    """What a plan's model name means: the id or path to load, its env, its catalogue entry."""

    model: str
    env: str
    spec: ModelSpec | None = None


def _vlm(
    key: str,
    hf_id: str,
    family: str,
    vram: float,
    notes: str = "",
    backends: tuple[str, ...] = ("hf", "vllm", "sglang", "openai", "vllm-server", "sglang-server"),
) -> ModelSpec:
    envs = {backend: _GPU[backend] for backend in backends if backend in _GPU}
    return ModelSpec(key, hf_id, family, backends, envs, vram, notes)


_QWEN3 = "needs transformers>=4.57 (hf-qwen locks 5.x)"
CATALOGUE: tuple[ModelSpec, ...] = (
    _vlm("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "Qwen2-VL", 6),
    _vlm("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "Qwen2-VL", 18),
    _vlm("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL", 9),
    _vlm("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL", 18),
    _vlm("qwen2.5-vl-32b", "Qwen/Qwen2.5-VL-32B-Instruct", "Qwen2.5-VL", 70, "1x80 GB or tp 2"),
    _vlm(
        "qwen2.5-vl-72b", "Qwen/Qwen2.5-VL-72B-Instruct", "Qwen2.5-VL", 150, "tp 2x80 GB or 4x40 GB"
    ),
    _vlm("qwen3-vl-2b", "Qwen/Qwen3-VL-2B-Instruct", "Qwen3-VL", 6, _QWEN3),
    _vlm("qwen3-vl-4b", "Qwen/Qwen3-VL-4B-Instruct", "Qwen3-VL", 11, _QWEN3),
    _vlm("qwen3-vl-8b", "Qwen/Qwen3-VL-8B-Instruct", "Qwen3-VL", 20, _QWEN3),
    _vlm("qwen3-vl-30b-a3b", "Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen3-VL", 66, f"MoE; {_QWEN3}"),
    _vlm(
        "internvl3-2b", "OpenGVLab/InternVL3-2B-hf", "InternVL3", 6, "transformers-format weights"
    ),
    _vlm(
        "internvl3-8b", "OpenGVLab/InternVL3-8B-hf", "InternVL3", 20, "transformers-format weights"
    ),
    _vlm("internvl3-38b", "OpenGVLab/InternVL3-38B-hf", "InternVL3", 80, "tp 2 or 1x80 GB (tight)"),
    _vlm(
        "minicpm-v-2.6",
        "openbmb/MiniCPM-V-2_6",
        "MiniCPM-V",
        18,
        "remote code (trust_remote_code); no AutoModelForImageTextToText class: vLLM/SGLang",
        backends=("vllm", "sglang", "openai", "vllm-server", "sglang-server"),
    ),
    _vlm(
        "deepseek-vl2-tiny",
        "deepseek-ai/deepseek-vl2-tiny",
        "DeepSeek-VL2",
        10,
        "MoE 3B (1B active); not in transformers: vLLM/SGLang",
        backends=("vllm", "sglang", "openai", "vllm-server", "sglang-server"),
    ),
    _vlm(
        "smolvlm-256m",
        "HuggingFaceTB/SmolVLM-256M-Instruct",
        "SmolVLM",
        2,
        "small enough for a CPU",
    ),
    _vlm("smolvlm-2b", "HuggingFaceTB/SmolVLM-Instruct", "SmolVLM", 6),
    _vlm(
        "gemma-3-4b", "google/gemma-3-4b-it", "Gemma 3", 10, "gated: accept the licence on the Hub"
    ),
    _vlm(
        "gemma-3-12b",
        "google/gemma-3-12b-it",
        "Gemma 3",
        28,
        "gated: accept the licence on the Hub",
    ),
    _vlm(
        "gemma-3-27b",
        "google/gemma-3-27b-it",
        "Gemma 3",
        60,
        "gated: accept the licence on the Hub",
    ),
    ModelSpec(
        "tesseract-rus",
        "",
        "Tesseract",
        ("tesseract",),
        {"tesseract": "tesseract"},
        0,
        "OCR baseline on the CPU: apt-get install tesseract-ocr tesseract-ocr-rus",
    ),
    ModelSpec(
        "tiny-llava",
        "",
        "tiny test model",
        ("hf", "vllm", "vllm-server"),
        {"hf": "hf-cpu", "vllm": "vllm-cpu", "vllm-server": "vllm-cpu"},
        0,
        f"random ~1 MB LLaVA at $VLMHB_HOME/{TINY_MODEL_DIR}, built on first use "
        "(python -m vlmhb.worker.tiny_model PATH in the hf-cpu env)",
        build_module="vlmhb.worker.tiny_model",
        local_dir=TINY_MODEL_DIR,
        build_env="hf-cpu",
    ),
)
_BY_KEY = {spec.key: spec for spec in CATALOGUE}


def list_models(backend: str | None = None) -> list[ModelSpec]:
    """The catalogue, or the entries a backend can run."""
    backend = backend_name(backend) if backend else None
    return [spec for spec in CATALOGUE if backend is None or backend in spec.backends]


def backend_name(backend: str) -> str:
    """A vlmhb backend name from itself or from a v0.1 framework name (case-insensitive)."""
    folded = {name.lower(): value for name, value in V01_FRAMEWORKS.items()}
    return folded.get(backend.strip().lower(), backend.strip())


def find_spec(name: str) -> ModelSpec | None:
    """The catalogue entry for a key, a Hugging Face id or a v0.1 name (its last part)."""
    folded = name.strip().lower()
    if folded in _BY_KEY:
        return _BY_KEY[folded]
    for spec in CATALOGUE:
        if spec.hf_id and folded in (spec.hf_id.lower(), spec.hf_id.split("/")[-1].lower()):
            return spec
    return None


def _spec_model(spec: ModelSpec) -> str:
    if spec.local_dir:
        return str(vlmhb_home() / spec.local_dir)
    return spec.hf_id or spec.key


def resolve_model(name: str, backend: str) -> ResolvedModel:
    """What ``name`` run by ``backend`` means: id or path to load, env, catalogue entry.

    Raises ``ValueError`` when the catalogue entry cannot run on ``backend``, and
    ``LookupError`` when ``name`` is neither known, nor an HF id, nor an existing path.
    """
    backend = backend_name(backend)
    spec = find_spec(name)
    if spec is not None:
        if backend not in spec.backends:
            raise ValueError(
                f"model {spec.key!r} does not run on backend {backend!r} "
                f"(it runs on: {', '.join(spec.backends)})"
            )
        return ResolvedModel(model=_spec_model(spec), env=spec.env_for(backend), spec=spec)
    env = DEFAULT_ENVS.get(backend, backend)
    path = Path(name).expanduser()
    if name.strip() and path.exists():
        return ResolvedModel(model=str(path.resolve()), env=env)
    if _HF_ID.match(name.strip()) or backend in ("openai", "tesseract", "echo"):
        return ResolvedModel(model=name.strip(), env=env)
    close = difflib.get_close_matches(
        name.lower(),
        [*_BY_KEY, *(s.hf_id.split("/")[-1].lower() for s in CATALOGUE if s.hf_id)],
        n=3,
    )
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `vlmhb models`"
    raise LookupError(
        f"unknown model {name!r}: not a catalogue key, a Hugging Face id (org/name) "
        f"or an existing path{hint}"
    )


def env_name_for(backend: str, model: str, explicit: str | None) -> str:
    """The env a run uses: the plan's ``env``, else the catalogue's, else the backend default."""
    if explicit:
        return explicit
    try:
        return resolve_model(model, backend).env
    except (LookupError, ValueError):
        return DEFAULT_ENVS.get(backend, backend)
