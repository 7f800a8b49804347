"""The in-memory shape of a dataset: documents with ground truth, and problems found reading it."""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, overload

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


_MARSHAL, _PICKLE = b"m", b"p"


def _encode(doc: Document) -> bytes:
    state = (
        doc.id,
        tuple(str(p) for p in doc.images),
        doc.doc_type,
        doc.fields,
        doc.text,
        doc.tags,
        doc.meta,
        doc.problems,
        doc.line,
    )
    try:
        return _MARSHAL + marshal.dumps(state)
    except ValueError:  # a meta value marshal cannot hold (a loader's own object)
        return _PICKLE + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def _state(blob: bytes) -> tuple[Any, ...]:
    body = memoryview(blob)[1:]
    return marshal.loads(body) if blob[:1] == _MARSHAL else pickle.loads(body)


def _decode(blob: bytes) -> Document:
    id_, images, doc_type, fields, text, tags, meta, problems, line = _state(blob)
    return Document(
        id_, tuple(map(Path, images)), doc_type, fields, text, tags, meta, problems, line
    )


class DocumentHead(NamedTuple):
    """What checks read of a document, without building its image paths (the costly part)."""

    id: str
    doc_type: str
    fields: dict[str, str]
    problems: tuple[str, ...]
    line: int | None


def _head(blob: bytes) -> DocumentHead:
    id_, _, doc_type, fields, _, _, _, problems, line = _state(blob)
    return DocumentHead(id_, doc_type, fields, problems, line)


class DocumentList(Sequence[Document]):
    """Documents in order, each held as one encoded blob and decoded when read.

    A decoded ``Document`` (its field strings, dict, paths) costs ~4x its blob: a dataset of
    a million samples stays in tens of MB. Filters and slices share the blobs.
    """

    __slots__ = ("_blobs",)

    def __init__(self, documents: Iterable[Document] = ()) -> None:
        self._blobs: list[bytes] = [_encode(doc) for doc in documents]

    @classmethod
    def _sharing(cls, blobs: list[bytes]) -> DocumentList:
        new = cls()
        new._blobs = blobs
        return new

    def append(self, document: Document) -> None:
        """Add a document at the end."""
        self._blobs.append(_encode(document))

    def __len__(self) -> int:
        return len(self._blobs)

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> DocumentList: ...

    def __getitem__(self, index: int | slice) -> Document | DocumentList:
        if isinstance(index, slice):
            return DocumentList._sharing(self._blobs[index])
        return _decode(self._blobs[index])

    def __iter__(self) -> Iterator[Document]:
        return map(_decode, self._blobs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DocumentList):
            return self._blobs == other._blobs
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"DocumentList({len(self)} documents)"

    def heads(self) -> Iterator[DocumentHead]:
        """Each document's id, type, fields, problems and line, in order."""
        return map(_head, self._blobs)

    def filter(self, keep: Callable[[DocumentHead], bool]) -> DocumentList:
        """The documents ``keep`` accepts (it sees their heads), in order, sharing blobs."""
        return DocumentList._sharing([blob for blob in self._blobs if keep(_head(blob))])


def as_document_list(documents: Iterable[Document]) -> DocumentList:
    """``documents`` as a ``DocumentList`` (itself when it already is one)."""
    return documents if isinstance(documents, DocumentList) else DocumentList(documents)


@dataclass
class Dataset:
    """A dataset read from a folder: documents in file order plus dataset-level problems."""

    root: Path
    name: str
    documents: DocumentList
    problems: list[Problem] = field(default_factory=list)
    annotation_file: Path | None = None

    def __post_init__(self) -> None:
        # Loaders may hand a list; memory stays small only in the encoded form.
        self.documents = as_document_list(self.documents)

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


# (path, size, mtime) → raw SHA-256, both as short bytes: ~150 B an image, not ~400.
_DIGESTS: dict[bytes, bytes] = {}
_WHOLE_FILE = 32 << 20  # files up to this size are read in one call; larger ones in chunks
HEAD_BYTES = 256 << 10  # what ``read_digest`` keeps of a large file (image headers live here)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, memoised by (path, size, mtime); ``missing`` if unreadable."""
    try:
        cached = _DIGESTS.get(_memo_key(path, os.stat(path)))
        return cached.hex() if cached is not None else read_digest(path)[0]
    except OSError:
        return "missing"


def _memo_key(path: Path | str, stat: os.stat_result) -> bytes:
    what = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode("utf-8", "surrogateescape")
    return hashlib.blake2b(what, digest_size=16).digest()


def read_digest(path: Path) -> tuple[str, bytes]:
    """The file's SHA-256 (memoised by path, size, mtime) and its first bytes, in one read.

    The image check reads each file once through here, so the dataset's content hash that
    follows costs no second read. Raises ``OSError`` when the file cannot be read.
    """
    stat = os.stat(path)
    key = _memo_key(path, stat)
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
    _DIGESTS[key] = sha.digest()
    return sha.hexdigest(), head
