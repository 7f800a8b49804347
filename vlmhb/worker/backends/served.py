"""The ``vllm-server`` and ``sglang-server`` backends: a managed OpenAI-compatible server.

The worker starts the engine's own server inside the model's venv (``ManagedServer``: a free
127.0.0.1 port, its own process group, stopped however the worker ends), waits for its
health route, then answers each batch through the streaming ``openai`` client at the row's
``concurrency``, so every answer records time to first token, inter-token gaps, end-to-end
latency and tokens.

Load options (``init.load``) and the server flags they become:

==========================  =============================  ================================
option                      vLLM (``vllm serve``)          SGLang (``sglang.launch_server``)
==========================  =============================  ================================
``dtype``                   ``--dtype``                    ``--dtype``
``max_model_len``           ``--max-model-len``            ``--context-length``
``max_num_seqs``            ``--max-num-seqs``             ``--max-running-requests``
``gpu_memory_utilization``  ``--gpu-memory-utilization``   ``--mem-fraction-static``
``limit_mm_per_prompt``     ``--limit-mm-per-prompt``      (no such flag: refused)
``tensor_parallel_size``    ``--tensor-parallel-size``     ``--tp-size``
``kv_cache_memory_bytes``   ``--kv-cache-memory-bytes``    (vLLM only)
``max_num_batched_tokens``  ``--max-num-batched-tokens``   ``--chunked-prefill-size``
``enforce_eager``           ``--enforce-eager``            ``--disable-cuda-graph``
``trust_remote_code``       ``--trust-remote-code``        ``--trust-remote-code``
``seed``                    ``--seed``                     ``--random-seed``
``chat_template``           ``--chat-template``            ``--chat-template``
==========================  =============================  ================================

``quantization`` and (vLLM) ``distributed_executor_backend`` pass through too.
``context_length``, ``mem_fraction_static``, ``tp_size`` and ``max_running_requests`` are
accepted as aliases. ``server_args`` (a list of strings) is appended verbatim;
``health_timeout_s`` (900) bounds the wait for health; ``device`` (``auto`` | ``cpu`` |
``cuda``) as for the offline vllm backend: on a CPU host vLLM runs with
``--distributed-executor-backend uni --enforce-eager`` and ``VLLM_TARGET_DEVICE=cpu``.
The client options of the ``openai`` backend (``concurrency``, ``timeout_s``,
``max_retries``, ``extra_body``, ``stream``) apply to the requests.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from vlmhb.worker.backends.base import LoadInfo, Result, package_versions
from vlmhb.worker.backends.openai import OpenAIBackend
from vlmhb.worker.backends.server import ManagedServer, ServerCommand, free_port, watch_parent
from vlmhb.worker.protocol import Init, Request

SERVED_NAME = "vlmhb-model"
SHIM = "vlmhb.worker.backends.serve_shim"
ALIASES = {
    "context_length": "max_model_len",
    "mem_fraction_static": "gpu_memory_utilization",
    "tp_size": "tensor_parallel_size",
    "max_running_requests": "max_num_seqs",
}
# option -> (vLLM flag, SGLang flag); None: the engine has no such flag.
VALUE_FLAGS: dict[str, tuple[str | None, str | None]] = {
    "dtype": ("--dtype", "--dtype"),
    "max_model_len": ("--max-model-len", "--context-length"),
    "max_num_seqs": ("--max-num-seqs", "--max-running-requests"),
    "gpu_memory_utilization": ("--gpu-memory-utilization", "--mem-fraction-static"),
    "tensor_parallel_size": ("--tensor-parallel-size", "--tp-size"),
    "kv_cache_memory_bytes": ("--kv-cache-memory-bytes", None),
    "max_num_batched_tokens": ("--max-num-batched-tokens", "--chunked-prefill-size"),
    "seed": ("--seed", "--random-seed"),
    "chat_template": ("--chat-template", "--chat-template"),
    "distributed_executor_backend": ("--distributed-executor-backend", None),
    "quantization": ("--quantization", "--quantization"),
}
SWITCH_FLAGS: dict[str, tuple[str, str]] = {
    "enforce_eager": ("--enforce-eager", "--disable-cuda-graph"),
    "trust_remote_code": ("--trust-remote-code", "--trust-remote-code"),
}
VLLM_CPU_ENV = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def server_options(load: dict[str, Any]) -> dict[str, Any]:
    """The load options with aliases folded onto their canonical names."""
    options = dict(load)
    for alias, name in ALIASES.items():
        if alias in options:
            value = options.pop(alias)
            options.setdefault(name, value)
    return options


def engine_flags(engine: str, load: dict[str, Any]) -> list[str]:
    """Server flags for ``engine`` (``vllm`` | ``sglang``) from the load options."""
    column = 0 if engine == "vllm" else 1
    options = server_options(load)
    flags: list[str] = []
    for key, names in VALUE_FLAGS.items():
        value = options.get(key)
        if value is None:
            continue
        flag = names[column]
        if flag is None:
            raise ValueError(f"{engine}-server: load option {key} has no {engine} equivalent")
        flags += [flag, str(value)]
    for key, names in SWITCH_FLAGS.items():
        if options.get(key):
            flags.append(names[column])
    limit = options.get("limit_mm_per_prompt")
    if limit is not None:
        if engine != "vllm":
            raise ValueError(f"{engine}-server: load option limit_mm_per_prompt is vLLM only")
        flags += [
            "--limit-mm-per-prompt",
            json.dumps({"image": limit} if isinstance(limit, int) else limit),
        ]
    extra = options.get("server_args") or []
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise ValueError(f"{engine}-server: server_args must be a list of strings")
    return flags + extra


def vllm_command(
    python: str, model: str, load: dict[str, Any], port: int, on_cpu: bool
) -> ServerCommand:
    """``vllm serve`` through the shim, on 127.0.0.1:``port``."""
    load = dict(load)
    env = dict(os.environ)
    if on_cpu:
        load.setdefault("distributed_executor_backend", "uni")
        load.setdefault("enforce_eager", True)
        env.update(VLLM_CPU_ENV)
    env["VLMHB_SERVE_ENGINE"] = "vllm"
    argv = [python, "-m", SHIM, "vllm", "serve", model, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--served-model-name", SERVED_NAME]
    argv += ["--uvicorn-log-level", "warning", *engine_flags("vllm", load)]
    return ServerCommand(argv=argv, port=port, env=env, health_path="/health")


def sglang_command(python: str, model: str, load: dict[str, Any], port: int) -> ServerCommand:
    """``python -m sglang.launch_server`` through the shim, on 127.0.0.1:``port``."""
    env = dict(os.environ)
    env["VLMHB_SERVE_ENGINE"] = "sglang"
    argv = [python, "-m", SHIM, "module", "sglang.launch_server", "--model-path", model]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME]
    argv += ["--log-level", "warning", *engine_flags("sglang", load)]
    return ServerCommand(argv=argv, port=port, env=env, health_path="/health")


class ServedBackend:
    """Start the engine's server, then talk to it as the ``openai`` backend does."""

    engine = ""
    packages: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.server: ManagedServer | None = None
        self.client = OpenAIBackend()

    def command(self, init: Init, port: int) -> tuple[ServerCommand, str]:
        """The server command for this init, and the device it runs on."""
        raise NotImplementedError

    def load(self, init: Init) -> LoadInfo:
        command, device = self.command(init, free_port())
        self.server = ManagedServer(command, name=f"{self.engine}-server")
        self.server.start()
        watch_parent(os.getppid(), self._orphaned)
        up_s = self.server.wait_healthy(float(init.load.get("health_timeout_s", 900.0)))
        print(f"[{self.engine}-server] healthy after {up_s:.1f} s", file=sys.stderr, flush=True)
        client_load: dict[str, Any] = {
            key: init.load[key]
            for key in ("concurrency", "timeout_s", "max_retries", "backoff_s", "extra_body")
            if key in init.load
        }
        client_load.update(base_url=command.base_url, served_model_name=SERVED_NAME)
        client_load.setdefault("timeout_s", 600.0)
        info = self.client.load(
            Init(backend="openai", model=SERVED_NAME, load=client_load, generation=init.generation)
        )
        versions = {**info.versions, **package_versions(*self.packages)}
        return LoadInfo(device=f"{device} via {command.base_url}", versions=versions)

    def generate(self, batch: list[Request]) -> list[Result]:
        return self.client.generate(batch)

    def _orphaned(self) -> None:
        """The orchestrator is gone (``kill -9``): nobody will read another answer, and a
        server left behind would hold its port and GPU memory. Stop it fast, then exit."""
        print(f"[{self.engine}-server] orchestrator gone: stopping", file=sys.stderr, flush=True)
        if self.server is not None:
            self.server.stop(grace_s=2.0)
        os._exit(1)

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()
            self.server = None


class VLLMServerBackend(ServedBackend):
    """``vllm serve`` in the model's venv."""

    engine = "vllm"
    packages = ("vllm", "vllm-cpu", "torch", "transformers")

    def command(self, init: Init, port: int) -> tuple[ServerCommand, str]:
        from vlmhb.worker.backends.vllm import cuda_available

        device = str(init.load.get("device", "auto"))
        on_cpu = device == "cpu" or (device == "auto" and not cuda_available())
        load = {k: v for k, v in init.load.items() if k != "device"}
        return vllm_command(sys.executable, init.model, load, port, on_cpu), (
            "cpu" if on_cpu else "cuda"
        )


class SGLangServerBackend(ServedBackend):
    """SGLang's server in the model's venv (CUDA only)."""

    engine = "sglang"
    packages = ("sglang", "torch", "transformers", "flashinfer-python")

    def command(self, init: Init, port: int) -> tuple[ServerCommand, str]:
        return sglang_command(sys.executable, init.model, init.load, port), "cuda"
