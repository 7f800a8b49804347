"""Shared pieces for tests that run real models: model-env interpreters, the tiny model, a worker.

Import the fixtures into a test module (``from tests.fixtures_models import hf_python, ...``).

* ``env_python(name)`` finds a model env's interpreter: ``$VLMHB_HF_CPU_PYTHON`` /
  ``$VLMHB_VLLM_CPU_PYTHON`` when set (an explicit choice wins and costs nothing), else
  ``vlmhb.envs.ensure_env(name)``; when neither gives one the test is skipped with a loud reason.
* ``tiny_model`` builds the tiny random LLaVA once per session with the hf-cpu interpreter.
* ``ModelWorker`` runs the real ``python -m vlmhb.worker`` in a model env, seeing the vlmhb code
  through a shim folder (only a ``vlmhb`` symlink on ``PYTHONPATH``), and speaks JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # the GPU check's own drawing, shared with the tests
import gpu_check  # noqa: E402

from vlmhb.run.code_shim import code_shim  # noqa: E402
from vlmhb.worker.protocol import unbatched  # noqa: E402

ENV_VARS = {"hf-cpu": "VLMHB_HF_CPU_PYTHON", "vllm-cpu": "VLMHB_VLLM_CPU_PYTHON"}


def env_python(name: str) -> Path:
    """The interpreter of model env ``name``, or skip the test saying how to provide one."""
    var = ENV_VARS[name]
    if os.environ.get(var):
        path = Path(os.environ[var])
        if not path.exists():
            pytest.fail(f"${var} points at {path}, which does not exist")
        return path
    reason = ""
    try:
        from vlmhb.envs import ensure_env
        from vlmhb.errors import VlmhbError

        try:
            return Path(ensure_env(name).python)
        except VlmhbError as exc:
            reason = f"ensure_env({name!r}) failed: {exc}"
    except ImportError as exc:
        reason = f"vlmhb.envs not importable: {exc}"
    # In CI the env must build: a skip there would hide a broken env.
    stop = pytest.fail if os.environ.get("CI") else pytest.skip
    stop(
        f"NO {name} ENV: set ${var} to its python or make `vlmhb env` able to build it "
        f"(UV_FIND_LINKS for the +cpu torch wheel); {reason}"
    )


def worker_env(shim: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a worker: PATH, HOME, the shim, offline hub, few threads."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(shim),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for name in ("HF_HOME", "VLLM_CACHE_ROOT"):  # the session's temp caches (conftest)
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def shim_dir() -> Path:
    """The code shim shared by the session's workers (vlmhb's own)."""
    return code_shim()


@pytest.fixture(scope="session")
def hf_python() -> Path:
    """The hf-cpu env's interpreter."""
    return env_python("hf-cpu")


@pytest.fixture(scope="session")
def tiny_model(hf_python: Path, shim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random LLaVA, built once per session (seed 0)."""
    out = tmp_path_factory.mktemp("tiny") / "tiny-llava"
    proc = subprocess.run(
        [str(hf_python), "-m", "vlmhb.worker.tiny_model", str(out), "--seed", "0"],
        env=worker_env(shim_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def doc_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four small, different synthetic document images (PNG) and one corrupt file, last."""
    folder = tmp_path_factory.mktemp("images")
    return draw_images(folder)


def draw_images(folder: Path, count: int = 4) -> list[Path]:
    """``count`` distinct drawn images (as the GPU check draws them) plus ``corrupt.png``."""
    paths = gpu_check.draw_images(folder, count)
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 4)
    return [*paths, corrupt]


class ModelWorker:
    """A real worker subprocess in a model env, driven line by line."""

    def __init__(
        self, python: Path, shim: Path, stderr_path: Path, extra_env: dict | None = None
    ) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [str(python), "-m", "vlmhb.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=worker_env(shim, extra_env),
        )
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = b""
        self._unbatched: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; ``type`` must be in it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message, ensure_ascii=False) + "\n").encode())
        self.proc.stdin.flush()

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        """Write several messages in one go (so the worker sees them as one window)."""
        assert self.proc.stdin is not None
        data = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages)
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def read(self, timeout: float = 120.0) -> dict[str, Any]:
        """The next message (a ``batch`` line's one by one), or fail with the stderr tail."""
        if self._unbatched:
            return self._unbatched.pop(0)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                pytest.fail(f"worker silent for {timeout} s; stderr:\n{self.stderr_tail()}")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                pytest.fail(f"worker exited ({self.proc.wait()}); stderr:\n{self.stderr_tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self._unbatched = unbatched(json.loads(line))
        return self._unbatched.pop(0) if self._unbatched else self.read(timeout)

    def start(self, init: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
        """Send ``init`` and return the ``ready`` or ``fatal`` answer."""
        self.send({"type": "init", "protocol": 1, **init})
        return self.read(timeout)

    def ask(self, requests: list[dict[str, Any]], timeout: float = 300.0) -> dict[str, dict]:
        """Send requests as one window; return the answers by id."""
        self.send_many([{"type": "request", **r} for r in requests])
        answers = {}
        for _ in requests:
            message = self.read(timeout)
            answers[message["id"]] = message
        return answers

    def stderr_tail(self, chars: int = 4000) -> str:
        """The end of the worker's stderr log."""
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-chars:]

    def close(self, timeout: float = 60.0) -> int:
        """Ask for shutdown, wait, and return the exit code (killing it if it hangs)."""
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                self.send({"type": "shutdown"})
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._selector.close()
        self._stderr.close()
        return self.proc.returncode
