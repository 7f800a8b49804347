"""The in-memory shape of a dataset: documents with ground truth, and problems found reading it."""

from __future__ import annotations

import hashlib
import json
import marshal
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
        return record_of(self.id, rel, self.doc_type, self.fields, self.text, self.tags, self.meta)


def record_of(
    id: str,
    images: Sequence[str],
    doc_type: str,
    fields: dict[str, str],
    text: str | None,
    tags: Sequence[str],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """A native ``annotations.jsonl`` record (``images`` relative to the dataset folder)."""
    return {
        "id": id,
        "image": images[0] if len(images) == 1 else list(images),
        "doc_type": doc_type,
        "fields": dict(fields),
        "text": text,
        "tags": list(tags),
        "meta": meta,
    }


_MARSHAL, _PICKLE = b"m", b"p"


def _encode(doc: Document) -> bytes:
    return _encode_state(
        (
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
    )


def _encode_state(state: tuple[Any, ...]) -> bytes:
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


class DocumentSummary(NamedTuple):
    """What checks ask of a whole document list, gathered in one pass."""

    doc_types: frozenset[str]
    field_names: frozenset[str]
    n_fields: int  # fields over all documents: the samples of a field-mode run
    colons: bool  # a ':' in some id or field name (only then can ``doc:field`` ids collide)


class _Tally:
    """A running ``DocumentSummary``, kept up to date as documents are appended."""

    __slots__ = ("colon_ids", "n_fields", "names", "types")

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.names: set[str] = set()
        self.n_fields = 0
        self.colon_ids = False

    def add(self, doc_id: str, doc_type: str, fields: dict[str, str]) -> None:
        self.types.add(doc_type)
        self.names.update(fields)
        self.n_fields += len(fields)
        self.colon_ids = self.colon_ids or ":" in doc_id

    def summary(self) -> DocumentSummary:
        colons = self.colon_ids or any(":" in name for name in self.names)
        return DocumentSummary(frozenset(self.types), frozenset(self.names), self.n_fields, colons)


class DocumentList(Sequence[Document]):
    """Documents in order, each held as one encoded blob and decoded when read.

    A decoded ``Document`` (its field strings, dict, paths) costs ~4x its blob: a dataset of
    a million samples stays in tens of MB. Filters and slices share the blobs.
    """

    __slots__ = ("_blobs", "_tally")

    def __init__(self, documents: Iterable[Document] = ()) -> None:
        self._blobs: list[bytes] = []
        self._tally: _Tally | None = _Tally()  # None: not known (a slice, a filter)
        for document in documents:
            self.append(document)

    @classmethod
    def _sharing(cls, blobs: list[bytes]) -> DocumentList:
        new = cls()
        new._blobs, new._tally = blobs, None
        return new

    def append(self, document: Document) -> None:
        """Add a document at the end."""
        self._blobs.append(_encode(document))
        if self._tally is not None:
            self._tally.add(document.id, document.doc_type, document.fields)

    def append_values(
        self,
        id: str,
        images: tuple[str, ...],
        doc_type: str,
        fields: dict[str, str],
        text: str | None = None,
        tags: tuple[str, ...] = (),
        meta: dict[str, Any] | None = None,
        problems: tuple[str, ...] = (),
        line: int | None = None,
    ) -> None:
        """Add a document given by its values, images as absolute path strings (a reader's
        way: no ``Document`` or ``Path`` is built, which is most of the cost of a big read)."""
        state = (id, images, doc_type, fields, text, tags, meta or {}, problems, line)
        self._blobs.append(_encode_state(state))
        if self._tally is not None:
            self._tally.add(id, doc_type, fields)

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

    def summary(self) -> DocumentSummary:
        """Types, field names, field count and colons of all documents (kept as documents
        are appended; one pass over a slice or a filter's result, the first time)."""
        if self._tally is None:
            tally = _Tally()
            for head in self.heads():
                tally.add(head.id, head.doc_type, head.fields)
            self._tally = tally
        return self._tally.summary()

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
    known_hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Loaders may hand a list; memory stays small only in the encoded form.
        self.documents = as_document_list(self.documents)

    def content_hash(self) -> str:
        """SHA-256 of the annotations and every image's bytes (images read once per process).

        A reader that hashed the documents as it read them hands the result over in
        ``known_hash``; it is the same value, computed from the same bytes.
        """
        if self.known_hash is not None:
            return self.known_hash
        from vlmhb.data.digests import file_digest

        content = ContentHash(self.root)
        for doc in self.documents:
            inside = content.inside(doc.images)
            content.add(doc, [file_digest(image) if inside else "outside" for image in doc.images])
        return content.hexdigest()

    def document_problems(self) -> list[Problem]:
        """Per-document problems as located ``Problem`` objects (file = annotation file)."""
        where = str(self.annotation_file or self.root)
        return [
            Problem(where, doc.line, doc.id, message)
            for doc in self.documents
            for message in doc.problems
        ]


# One encoder for every document: ``json.dumps`` with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


class ContentHash:
    """The running SHA-256 that ``Dataset.content_hash`` returns: per document, its native
    record as canonical JSON (``repr`` when an image lies outside the folder), then the hex
    digest of each image (``missing``/``outside`` when there is none to read)."""

    def __init__(self, root: Path) -> None:
        self._sha = hashlib.sha256()
        self._prefix = str(root).rstrip("/") + "/"  # string slicing: pathlib costs seconds

    def inside(self, images: Iterable[Path | str]) -> bool:
        """Whether every image path lies under the dataset folder."""
        return all(str(p).startswith(self._prefix) for p in images)

    def add(self, doc: Document, image_digests: Iterable[str]) -> None:
        """Hash ``doc`` and the digests of its images, in order."""
        if self.inside(doc.images):
            self.add_record(doc.to_record(Path(self._prefix)), image_digests)
        else:
            self._add(repr(doc), image_digests)

    def add_record(self, record: dict[str, Any], image_digests: Iterable[str]) -> None:
        """Hash a document given as its native record (``record_of``) and image digests."""
        self._add(record, image_digests)

    def _add(self, what: object, image_digests: Iterable[str]) -> None:
        self._sha.update(_CANONICAL.encode(what).encode())
        for digest in image_digests:
            self._sha.update(digest.encode())

    def hexdigest(self) -> str:
        """The hash of everything added so far."""
        return self._sha.hexdigest()
