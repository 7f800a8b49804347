"""Shared fixtures: small native datasets and plans written into a temp folder."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPAT = REPO.parent / "shared" / "compat" / "vlmhyperbench-v0.1"

# A non-interactive shell starts a background job (`make test &`) with SIGINT ignored, and
# every child inherits that: the tests that Ctrl-C a CLI child need the default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory: pytest.TempPathFactory):
    """Point VLMHB_HOME (and the hub and vLLM caches) into the session's temp folder.

    Session-scoped and autouse, so it is in place before any session fixture builds an env:
    the suite never writes into the user's own home. ``VLMHB_TEST_HOME`` names a persistent
    home on purpose (CI reuses its built envs that way).
    """
    base = tmp_path_factory.getbasetemp()
    home = Path(os.environ.get("VLMHB_TEST_HOME") or base / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLMHB_HOME", str(home))
        if "HF_HOME" not in os.environ:
            patch.setenv("HF_HOME", str(base / "hf-home"))
        if "VLMHB_CACHE_DIR" not in os.environ:
            # The answer cache lives with the session, not the persistent home: a second
            # `make test` must not answer a test's requests from the first one's.
            patch.setenv("VLMHB_CACHE_DIR", str(base / "answer-cache"))
        if "VLLM_CACHE_ROOT" not in os.environ:
            patch.setenv("VLLM_CACHE_ROOT", str(base / "vllm-cache"))
        yield home


@pytest.fixture(autouse=True)
def _isolated_home(
    _session_home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
):
    """Each test starts from the session's home, whatever an earlier test set."""
    monkeypatch.setenv("VLMHB_HOME", str(_session_home))
    # The answer cache is off unless a test turns it on (fixture ``answer_cache``): elsewhere a
    # cached answer would bypass the worker behaviour (restarts, timeouts, resources) under test.
    monkeypatch.setenv("VLMHB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "answer-cache"))
    monkeypatch.setenv("VLMHB_NO_CACHE", "1")


@pytest.fixture
def answer_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The answer cache on, in a folder of this test's own; returns the folder."""
    folder = tmp_path / "answer-cache"
    monkeypatch.setenv("VLMHB_CACHE_DIR", str(folder))
    monkeypatch.delenv("VLMHB_NO_CACHE", raising=False)
    return folder


def write_png(path: Path, text: str = "x") -> None:
    """A small real PNG image."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 32), "white")
    ImageDraw.Draw(image).text((4, 8), text[:8], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_dataset(
    root: Path,
    n_docs: int = 5,
    fields: tuple[str, ...] = ("surname", "name", "birth_date"),
    doc_type: str = "passport",
    corrupt: tuple[int, ...] = (),
    missing: tuple[int, ...] = (),
) -> Path:
    """A native dataset: ``n_docs`` documents with real PNGs; some corrupt or missing."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(n_docs):
        image = root / "images" / f"doc{index:04d}.png"
        if index in corrupt:
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(b"this is not an image")
        elif index not in missing:
            write_png(image, f"d{index}")
        lines.append(
            {
                "id": f"doc{index:04d}",
                "image": f"images/doc{index:04d}.png",
                "doc_type": doc_type,
                "fields": {name: f"{name}-{index}" for name in fields},
                "text": " ".join(f"{name}-{index}" for name in fields),
                "tags": ["clean"],
            }
        )
    with (root / "annotations.jsonl").open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return root


PlanWriter = Callable[..., Path]


@pytest.fixture
def write_plan(tmp_path: Path) -> PlanWriter:
    """Write a native plan CSV next to the datasets and return its path."""

    def write(rows: list[dict[str, object]], name: str = "plan.csv") -> Path:
        path = tmp_path / name
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
                )
        return path

    return write


def vlmhb_cmd(*args: str) -> list[str]:
    """argv running the vlmhb CLI with this interpreter."""
    return [sys.executable, "-m", "vlmhb.cli", *args]


def run_worker_lines(
    lines: list[dict[str, Any]], env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[list[dict[str, Any]], str]:
    """Feed these messages to a real ``python -m vlmhb.worker``; return its replies and stderr."""
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "vlmhb.worker"],
        input=text,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    from vlmhb.worker.protocol import unbatched

    replies = [m for line in proc.stdout.splitlines() for m in unbatched(json.loads(line))]
    return replies, proc.stderr


def run_worker(
    init: dict[str, Any],
    requests: list[dict[str, Any]],
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[list[dict[str, Any]], str]:
    """A whole worker session: init, the requests, shutdown; returns (messages, stderr)."""
    lines = [{"type": "init", "protocol": 1, **init}]
    lines += [{"type": "request", **request} for request in requests]
    lines.append({"type": "shutdown"})
    return run_worker_lines(lines, env, timeout)


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a table rich printed (``┃ head ┃`` / ``│ cell │`` lines) as dicts."""
    header: list[str] = []
    rows = []
    for line in text.splitlines():
        if line.startswith("┃"):
            header = [cell.strip() for cell in line.strip("┃").split("┃")]
        elif line.startswith("│") and header:
            rows.append(
                dict(zip(header, (c.strip() for c in line.strip("│").split("│")), strict=True))
            )
    return rows


requires_compat = pytest.mark.skipif(
    not COMPAT.is_dir(),
    reason=f"the real VLMHyperBench v0.1 files are not beside this checkout ({COMPAT}); "
    "the project's own v0.1 fixtures (tests/fixtures_v01.py) cover the formats",
)


@pytest.fixture(scope="session")
def v01_tree(tmp_path_factory: pytest.TempPathFactory):
    """The project's own VLMHyperBench v0.1 tree, written once per session (read-only use)."""
    from fixtures_v01 import write_v01_tree

    return write_v01_tree(tmp_path_factory.mktemp("v01"))
