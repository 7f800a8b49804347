"""The ``load`` and ``generation`` options each backend takes, as typed pydantic models.

The worker side stays standard-library only, so the schema lives here, orchestrator-side: one
``load`` model per backend (``extra="forbid"``: a misspelt key is an error, not ignored) and
one ``generation`` model shared by the backends, with what only some of them pass on. A plan
row is checked against them when the plan is read, so ``{"max_new_tokens": "abc"}`` or
``{"pass_env": 5}`` is a located plan error before anything runs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class CommonLoad(_Options):
    """Keys every backend accepts: which host variables the worker may see."""

    pass_env: list[str] = Field(default_factory=list)

    @field_validator("pass_env")
    @classmethod
    def _variable_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value


class EchoLoad(CommonLoad):
    """The echo test backend's knobs (fault injection for tests and demos)."""

    answer: str | None = None
    answer_field: bool = False
    check_images: bool = True
    delay_s: float = Field(default=0.0, ge=0)
    allocate_mb: int = Field(default=0, ge=0)
    fail_load: str | None = None
    fail_on: str | None = None
    crash_on: str | None = None
    hang_on: str | None = None
    print_stdout: bool = False
    spawn_child_s: float | None = Field(default=None, gt=0)
    # the continuous path: an engine holding ``max_num_seqs`` requests, ``step_s`` a step
    continuous: bool = False
    max_num_seqs: int | None = Field(default=None, ge=1)
    step_s: float = Field(default=0.0, ge=0)
    refuse_on: str | None = None
    # answers that depend on the prompt (prompt search tests): the reference when the prompt
    # holds ``oracle_marker``; ``oracle`` is the dataset folder or its annotations.jsonl
    oracle: str | None = None
    oracle_marker: str | None = None


class TesseractLoad(CommonLoad):
    """Tesseract: languages, page segmentation, the binary (a plan is trusted like a script)."""

    lang: str = "rus+eng"
    psm: int = Field(default=6, ge=0, le=13)
    fallback_psm: int | None = Field(default=4, ge=0, le=13)
    tesseract_cmd: str | None = None
    cache_size: int = Field(default=64, ge=1)
    parallel: int = Field(default=1, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    extraction: Literal["layout", "lines", "zones"] = "layout"


class _PixelLimits(CommonLoad):
    min_pixels: int | None = Field(default=None, ge=1)
    max_pixels: int | None = Field(default=None, ge=1)
    trust_remote_code: bool = False
    dtype: str | None = None
    device: str | None = Field(default=None, pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    log_tokens: bool = False
    revision: str | None = None


class HfLoad(_PixelLimits):
    """transformers: dtype, device, attention implementation, threads."""

    attn_implementation: str | None = None
    device_map: str | dict[str, Any] | None = None
    threads: int | None = Field(default=None, ge=1)
    log_prompts: bool = False


class VllmLoad(_PixelLimits):
    """vLLM's offline engine: what ``LLM(...)`` is given."""

    max_model_len: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    enforce_eager: bool | None = None
    kv_cache_memory_bytes: int | None = Field(default=None, ge=1)
    seed: int | None = None
    max_num_seqs: int | None = Field(default=None, ge=1)
    distributed_executor_backend: str | None = None
    quantization: str | None = None
    limit_mm_per_prompt: int | dict[str, int] | None = None
    mm_processor_kwargs: dict[str, Any] | None = None
    continuous: bool = True


class SglangLoad(CommonLoad):
    """SGLang's engine."""

    tp_size: int | None = Field(default=None, ge=1)
    mem_fraction_static: float | None = Field(default=None, gt=0, le=1)
    context_length: int | None = Field(default=None, ge=1)
    dtype: str | None = None
    trust_remote_code: bool = False
    chat_template: str | None = None
    engine_args: dict[str, Any] = Field(default_factory=dict)
    max_running_requests: int | None = Field(default=None, ge=1)
    revision: str | None = None
    continuous: bool = True


class OpenaiLoad(CommonLoad):
    """An OpenAI-compatible server: where it is, which key variable, how hard to retry."""

    base_url: str | None = None
    api_key_env: str | None = None
    served_model_name: str | None = None
    concurrency: int = Field(default=8, ge=1)
    check_server: bool = True
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    stream: bool = True

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


class ServedLoad(CommonLoad):
    """A managed server (``vllm-server``, ``sglang-server``): its flags and the client's knobs
    (``vlmhb.worker.backends.served`` maps each option to a flag; aliases accepted)."""

    dtype: str | None = None
    device: str | None = Field(default=None, pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    max_model_len: int | None = Field(default=None, ge=1)
    context_length: int | None = Field(default=None, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_running_requests: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    mem_fraction_static: float | None = Field(default=None, gt=0, le=1)
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    tp_size: int | None = Field(default=None, ge=1)
    kv_cache_memory_bytes: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    limit_mm_per_prompt: int | dict[str, int] | None = None
    enforce_eager: bool | None = None
    trust_remote_code: bool = False
    seed: int | None = None
    chat_template: str | None = None
    quantization: str | None = None
    distributed_executor_backend: str | None = None
    revision: str | None = None
    server_args: list[str] = Field(default_factory=list)
    health_timeout_s: float = Field(default=900.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)


class Generation(_Options):
    """Generation parameters; a backend ignores what its engine has no use for."""

    max_new_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = None
    min_p: float | None = Field(default=None, ge=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    do_sample: bool | None = None


LOAD_OPTIONS: dict[str, type[CommonLoad]] = {
    "echo": EchoLoad,
    "tesseract": TesseractLoad,
    "hf": HfLoad,
    "vllm": VllmLoad,
    "sglang": SglangLoad,
    "openai": OpenaiLoad,
    "vllm-server": ServedLoad,
    "sglang-server": ServedLoad,
}


def option_problems(
    backend: str, load: dict[str, Any], generation: dict[str, Any]
) -> list[tuple[str, str]]:
    """``(column, message)`` for every ``load``/``generation`` option the backend rejects."""
    problems: list[tuple[str, str]] = []
    checks: tuple[tuple[str, type[BaseModel] | None, dict[str, Any]], ...] = (
        ("load", LOAD_OPTIONS.get(backend), load),
        ("generation", Generation, generation),
    )
    for column, schema, values in checks:
        if schema is None:
            continue
        try:
            schema.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                key = ".".join(str(part) for part in error["loc"]) or column
                text = error["msg"]
                if error["type"] == "extra_forbidden":
                    known = ", ".join(sorted(schema.model_fields))
                    text = f"unknown option for backend {backend!r} (known: {known})"
                got = repr(error.get("input"))
                got = got if len(got) <= 60 else got[:57] + "..."
                problems.append((column, f"{key}: {text} (got {got})"))
    return problems
