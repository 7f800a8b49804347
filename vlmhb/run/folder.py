"""The run folder: the versioned ``run.json`` record, and the answer log.

``answers.jsonl`` is append-only and durable without an fsync per sample: lines are written
through a buffer flushed to the OS in groups (a ``kill -9`` of the orchestrator loses only
what was still in its own buffer, never a line already flushed). On reopening, a torn last
line is cut off and the ids already answered are skipped, so a resumed run writes each
sample exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field

from vlmhb.fastjson import dumps_line, loads
from vlmhb.run.files import (
    ANSWERS,
    ANSWERS_CSV,
    METRICS_DIR,
    OVERALL_CSV,
    REFERENCES,
    RESOURCES,
    RUN_JSON,
    WORKER_LOG,
)
from vlmhb.seen_ids import SeenIds

__all__ = [
    "ANSWERS",
    "ANSWERS_CSV",
    "ANSWER_VERSION",
    "METRICS_DIR",
    "OVERALL_CSV",
    "REFERENCES",
    "RESOURCES",
    "RUN_JSON",
    "WORKER_LOG",
    "AnswerLog",
    "RunRecord",
    "iter_jsonl",
    "read_record",
    "write_answers_csv",
    "write_json_atomic",
    "write_record",
]

ANSWER_VERSION = 1


class RunRecord(BaseModel):
    """What ``run.json`` holds: the resolved run, its provenance and its outcome."""

    version: int = 1
    run_id: str
    status: str = "created"  # created | running | done | failed | interrupted
    plan_row: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    dataset: str = ""
    dataset_name: str = ""
    dataset_hash: str = ""
    prompts: str | None = None
    prompts_hash: str = ""
    backend: str = ""
    model: str = ""
    model_path: str = ""
    model_revision: str | None = None  # the hub commit the model resolved to (or the pin)
    identity: dict[str, Any] = Field(default_factory=dict)  # what the run id is a hash of
    mode: str = "field"
    metrics: list[str] = Field(default_factory=list)
    generation: dict[str, Any] = Field(default_factory=dict)
    isolation: str = "local"
    env: dict[str, Any] = Field(default_factory=dict)
    worker: dict[str, Any] = Field(default_factory=dict)
    host: dict[str, Any] = Field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    resources: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, Any] = Field(default_factory=dict)  # see vlmhb.run.timings
    error: str | None = None
    vlmhb_version: str = ""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), "utf-8")
    os.replace(tmp, path)


def read_record(run_dir: Path) -> RunRecord:
    """Load ``run.json`` of a run folder."""
    return RunRecord.model_validate_json((run_dir / RUN_JSON).read_text("utf-8"))


def write_record(run_dir: Path, record: RunRecord) -> None:
    """Save ``run.json`` atomically."""
    write_json_atomic(run_dir / RUN_JSON, record.model_dump(mode="json"))


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of a file; a torn last line is skipped."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                yield loads(raw)
            except ValueError:
                continue


class AnswerLog:
    """Append-only ``answers.jsonl`` with resume: each id is in the file once.

    ``done`` holds the ids earlier attempts answered (read when the log opens); an answer to
    one of them is not written again. Ids written in this session are not kept (memory stays
    flat in the number of samples): they are unique by construction, since preflight refuses
    sample ids that collide and the dispatcher records a request once, as it leaves the
    in-flight window.
    """

    def __init__(self, path: Path, flush_every: int = 512, flush_seconds: float = 0.5) -> None:
        self.path = path
        self.done: set[str] = set()
        self.written = 0  # answers appended in this session
        self.errors = 0
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._pending = 0
        self._last_flush = time.monotonic()
        self._repair()
        for line in iter_jsonl(path):
            answer_id = line.get("id")
            if isinstance(answer_id, str) and answer_id not in self.done:
                self.done.add(answer_id)
                self.errors += bool(line.get("error"))
        self._handle: IO[bytes] = path.open("ab", buffering=1 << 20)

    def _repair(self) -> None:
        """Cut a torn last line left by a crash mid-write."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            # Walk back to the last newline in chunks.
            position = size
            while position > 0:
                step = min(65536, position)
                position -= step
                handle.seek(position)
                chunk = handle.read(step)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    handle.truncate(position + cut + 1)
                    return
            handle.truncate(0)

    @property
    def answered(self) -> int:
        """Distinct ids in the file: earlier attempts' and this session's."""
        return len(self.done) + self.written

    def append(self, answer: dict[str, Any]) -> bool:
        """Write one answer unless an earlier attempt answered its id; whether it was written."""
        if answer["id"] in self.done:
            return False
        self.written += 1
        self.errors += bool(answer.get("error"))
        self._handle.write(dumps_line(answer))
        self._pending += 1
        if self._pending >= self._flush_every or (
            time.monotonic() - self._last_flush >= self._flush_seconds
        ):
            self.flush()
        return True

    def flush(self, sync: bool = False) -> None:
        """Hand buffered lines to the OS (and to the disk with ``sync``)."""
        self._handle.flush()
        if sync:
            os.fsync(self._handle.fileno())
        self._pending = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush, fsync and close."""
        if not self._handle.closed:
            self.flush(sync=True)
            self._handle.close()


def write_answers_csv(run_dir: Path) -> Path:
    """Write ``answers.csv`` in the VLMHyperBench v0.1 shape: ``id;model_answer``, BOM."""
    target = run_dir / ANSWERS_CSV
    tmp = target.with_name(f".{target.name}.tmp")
    seen = SeenIds()
    with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "model_answer"])
        for line in iter_jsonl(run_dir / ANSWERS):
            if not seen.add(line["id"]):
                continue
            writer.writerow([line["id"], line.get("answer", "")])
    os.replace(tmp, target)
    return target
