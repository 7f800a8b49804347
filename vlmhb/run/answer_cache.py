"""A request-level answer cache: identical requests are answered once, across runs and plans.

The key of a request is a SHA-256 over everything that determines its answer: the backend,
the model (its resolved id or path, the ``revision`` load option, and for a local model folder
a fingerprint of its files), the environment it runs in (the env's lock hash, or this
interpreter under ``local`` isolation, and the vlmhb version whose worker code answers), the
load settings, the generation settings (with the request mode and the fields asked for), the
batch size, the system prompt, the prompt text, the content hash of every image, and the rest
of what the worker is sent (the request id, document type and field). Change any of them
and the request misses.

The store is one SQLite database in WAL mode under ``$VLMHB_CACHE_DIR`` (default
``$VLMHB_HOME/cache``): several runs read and write it at once (writers wait on a busy
timeout), and a ``kill -9`` loses at most the answers not committed yet, never the database.
Only answers are stored; errors are never cached, so a failed request is asked again.

``CachedSamples`` hooks the cache into a run: it wraps the sample stream before the
dispatcher, writes hits straight to the answer log and lets misses through; ``remember``
stores what the worker answered for them. ``VLMHB_NO_CACHE=1`` (``--no-cache``) turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import vlmhb
from vlmhb.home import vlmhb_home
from vlmhb.run.dispatch import Sample, answer_line
from vlmhb.run.folder import AnswerLog

CACHE_FILE = "answers.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER,
    output_tokens INTEGER,
    finish_reason TEXT,
    latency_s REAL,
    ttft_s REAL,
    created REAL NOT NULL
)
"""
_COLUMNS = ("text", "prompt_tokens", "output_tokens", "finish_reason", "latency_s", "ttft_s")


def cache_enabled() -> bool:
    """False when ``VLMHB_NO_CACHE`` is set to a true value (``--no-cache``)."""
    return os.environ.get("VLMHB_NO_CACHE", "").strip().lower() not in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """``$VLMHB_CACHE_DIR``, else ``$VLMHB_HOME/cache``."""
    value = os.environ.get("VLMHB_CACHE_DIR")
    return Path(value).expanduser() if value else vlmhb_home() / "cache"


class AnswerCache:
    """The SQLite store: ``get`` and ``put`` by request key; commits in small groups."""

    def __init__(
        self, path: Path | None = None, commit_every: int = 64, commit_seconds: float = 0.5
    ) -> None:
        self.path = path or cache_dir() / CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash never corrupts
        self._db.execute(_SCHEMA)
        self._commit_every = commit_every
        self._commit_seconds = commit_seconds
        self._buffer: list[tuple[Any, ...]] = []
        self._since = 0.0

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key`` (``text``, tokens, latency...), or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The stored responses of those ``keys`` that have one, in one query."""
        marks = ", ".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT key, {', '.join(_COLUMNS)} FROM answers WHERE key IN ({marks})", keys
        ).fetchall()
        return {row[0]: dict(zip(_COLUMNS, row[1:], strict=True)) for row in rows}

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Store one answer (the first one stored for a key wins).

        Answers wait in memory and go in with one short transaction every ``commit_every``
        answers or ``commit_seconds``: no lock is held while a model thinks.
        """
        if not self._buffer:
            self._since = time.monotonic()
        self._buffer.append((key, *(response.get(c) for c in _COLUMNS), time.time()))
        if (
            len(self._buffer) >= self._commit_every
            or time.monotonic() - self._since >= self._commit_seconds
        ):
            self.commit()

    def commit(self) -> None:
        """Write the waiting answers: durable, and visible to other runs."""
        if not self._buffer:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                f"INSERT OR IGNORE INTO answers (key, {', '.join(_COLUMNS)}, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._buffer,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._buffer.clear()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        """Commit and close."""
        self.commit()
        self._db.close()


def _model_fingerprint(model: str) -> list[tuple[str, int, int]] | None:
    """Names, sizes and mtimes of a local model folder's files (weights changed → new key)."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    return sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()
    )


def settings_identity(
    *,
    backend: str,
    model: str,
    load: dict[str, Any],
    batch_size: int | None,
    env: dict[str, Any],
    run_identity: dict[str, Any] | None = None,
) -> str:
    """The hash of a run's settings that every request key of the run shares.

    ``run_identity`` is what the run id hashes (``PreparedRun.identity``): the model's
    identity (hub revision, or a local folder's content hash) and the env's (lock hash, or the
    key packages' versions); without it the model folder's file list and this interpreter
    stand in.
    """
    environment = (
        {"lock_hash": env.get("lock_hash"), "name": env.get("name")}
        if env.get("lock_hash")
        else {"python": sys.version, "executable": sys.executable}
    )
    known = run_identity or {}
    identity = {
        "backend": backend,
        "model": model,
        "model_identity": known.get("model") or _model_fingerprint(model),
        "env_identity": known.get("env"),
        "revision": load.get("revision"),
        "env": environment,
        "vlmhb": vlmhb.__version__,
        "load": {k: v for k, v in load.items() if k != "pass_env"},
        "batch_size": batch_size,
    }
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ImageHashes:
    """Content hashes of image files, through the dataset's memo (a file is read once).

    The last few answers are kept here as well: a document's samples come one after
    another, so its images are asked for again at once, and a stat is saved each time.
    """

    def __init__(self, keep: int = 256) -> None:
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._keep = keep

    def of(self, path: str) -> str:
        """SHA-256 of the file's bytes ("missing" when it cannot be read)."""
        digest = self._recent.get(path)
        if digest is None:
            from vlmhb.data.digests import file_digest

            digest = self._recent[path] = file_digest(Path(path))
            if len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return digest


def request_key(settings: str, sample: Sample, images: ImageHashes) -> str:
    """The cache key of one request under a run's settings identity."""
    identity = {
        "settings": settings,
        # What the worker sees besides the prompt: a backend may answer by field (OCR), and
        # the echo backend by request id; a dataset's ids are stable across its runs.
        "request": [sample.id, sample.doc_type, sample.field],
        "generation": sample.generation,
        "system": sample.system,
        "prompt": sample.prompt,
        "images": [images.of(path) for path in sample.images],
    }
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheStats:
    """What the cache did in one run."""

    reused: int = 0
    stored: int = 0


class CachedSamples:
    """The sample stream of a run with cache hits answered on the way, misses passed on."""

    def __init__(
        self,
        cache: AnswerCache,
        settings: str,
        log: AnswerLog,
        on_answer: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self.log = log
        self.on_answer = on_answer
        self.stats = CacheStats()
        self._images = ImageHashes()
        self._asked: dict[str, str] = {}  # sample id → key, for misses sent to the worker

    def filter(self, samples: Iterable[Sample], chunk: int = 64) -> Iterator[Sample]:
        """Yield the samples the worker must answer; write cached answers to the log.

        Samples are looked up ``chunk`` at a time (one query each), in their order.
        """
        iterator = iter(samples)
        while group := list(islice(iterator, chunk)):
            yield from self._filter_chunk(group)

    def _filter_chunk(self, samples: list[Sample]) -> Iterator[Sample]:
        keys = {
            sample.id: request_key(self.settings, sample, self._images)
            for sample in samples
            if not (sample.id in self.log.done or sample.problem)
        }
        stored = self.cache.get_many(list(keys.values())) if keys else {}
        for sample in samples:
            key = keys.get(sample.id)
            if key is None:
                yield sample  # the dispatcher skips or records these as it always does
                continue
            found = stored.get(key)
            if found is None:
                self._asked[sample.id] = key
                yield sample
                continue
            line = answer_line(sample, 0, found, None)
            line["cached"] = True
            if self.log.append(line):
                self.stats.reused += 1
                if self.on_answer:
                    self.on_answer(line)

    def remember(self, line: dict[str, Any]) -> None:
        """Store a worker's answer to a miss (errors are never stored); then pass it on."""
        key = self._asked.pop(line["id"], None)
        if key is not None and line.get("error") is None:
            self.cache.put(key, {**line, "text": line.get("answer", "")})
            self.stats.stored += 1
        if self.on_answer:
            self.on_answer(line)


def cache_for_run(
    prepared: Any,
    env: dict[str, Any],
    log: AnswerLog,
    on_answer: Callable[[dict[str, Any]], None] | None,
    enabled: bool | None = None,
) -> CachedSamples | None:
    """The cache hook of one prepared run, or None when caching is off."""
    if not (cache_enabled() if enabled is None else enabled):
        return None
    run = prepared.run
    settings = settings_identity(
        backend=run.backend,
        model=prepared.model,
        load=dict(run.load),
        batch_size=run.batch_size,
        env=env,
        run_identity=getattr(prepared, "identity", None),
    )
    return CachedSamples(AnswerCache(), settings, log, on_answer)


@contextmanager
def cache_setting(enabled: bool) -> Iterator[None]:
    """Within the block, runs use the answer cache or not (child processes inherit it)."""
    before = os.environ.get("VLMHB_NO_CACHE")
    if enabled:
        os.environ.pop("VLMHB_NO_CACHE", None)
    else:
        os.environ["VLMHB_NO_CACHE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("VLMHB_NO_CACHE", None)
        else:
            os.environ["VLMHB_NO_CACHE"] = before
