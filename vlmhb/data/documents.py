"""The in-memory shape of a dataset: documents with ground truth, and problems found reading it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmhb.errors import Problem


@dataclass(frozen=True)
class Document:
    """One document: its page images, type, ground-truth fields and full text.

    ``problems`` lists what makes this document unusable (a missing or unreadable image, a
    path escaping the dataset folder); the runner turns them into per-sample error lines.
    """

    id: str
    images: tuple[Path, ...]
    doc_type: str
    fields: dict[str, str]
    text: str | None = None
    tags: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    line: int | None = field(default=None, compare=False)

    def to_record(self, root: Path) -> dict[str, Any]:
        """This document as a native ``annotations.jsonl`` record (paths relative to ``root``)."""
        prefix = str(root).rstrip("/") + "/"  # string slicing: pathlib costs seconds at 100k docs
        rel = [
            str(p)[len(prefix) :] if str(p).startswith(prefix) else p.relative_to(root).as_posix()
            for p in self.images
        ]
        return {
            "id": self.id,
            "image": rel[0] if len(rel) == 1 else rel,
            "doc_type": self.doc_type,
            "fields": dict(self.fields),
            "text": self.text,
            "tags": list(self.tags),
            "meta": self.meta,
        }


@dataclass
class Dataset:
    """A dataset read from a folder: documents in file order plus dataset-level problems."""

    root: Path
    name: str
    documents: list[Document]
    problems: list[Problem] = field(default_factory=list)
    annotation_file: Path | None = None

    def content_hash(self) -> str:
        """SHA-256 of the annotations and every image's bytes (cached by path, size, mtime)."""
        digest = hashlib.sha256()
        for doc in self.documents:
            record = doc.to_record(self.root) if _inside(doc.images, self.root) else None
            digest.update(
                json.dumps(record or repr(doc), sort_keys=True, ensure_ascii=False).encode()
            )
            for image in doc.images:
                digest.update(file_digest(image).encode())
        return digest.hexdigest()

    def document_problems(self) -> list[Problem]:
        """Per-document problems as located ``Problem`` objects (file = annotation file)."""
        where = str(self.annotation_file or self.root)
        return [
            Problem(where, doc.line, doc.id, message)
            for doc in self.documents
            for message in doc.problems
        ]


def _inside(images: tuple[Path, ...], root: Path) -> bool:
    prefix = str(root).rstrip("/") + "/"
    return all(str(p).startswith(prefix) for p in images)


_DIGESTS: dict[tuple[str, int, int], str] = {}
_WHOLE_FILE = 32 << 20  # files up to this size are read in one call; larger ones in chunks
HEAD_BYTES = 256 << 10  # what ``read_digest`` keeps of a large file (image headers live here)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, memoised by (path, size, mtime); ``missing`` if unreadable."""
    try:
        stat = os.stat(path)
        cached = _DIGESTS.get((str(path), stat.st_size, stat.st_mtime_ns))
        return cached if cached is not None else read_digest(path)[0]
    except OSError:
        return "missing"


def read_digest(path: Path) -> tuple[str, bytes]:
    """The file's SHA-256 (memoised by path, size, mtime) and its first bytes, in one read.

    The image check reads each file once through here, so the dataset's content hash that
    follows costs no second read. Raises ``OSError`` when the file cannot be read.
    """
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        if stat.st_size <= _WHOLE_FILE:
            data = handle.read()
            sha.update(data)
            head = data
        else:
            head = handle.read(HEAD_BYTES)
            sha.update(head)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
    _DIGESTS[key] = sha.hexdigest()
    return _DIGESTS[key], head
