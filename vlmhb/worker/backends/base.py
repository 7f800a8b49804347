"""What every backend provides, and the small helpers they share.

A *static* backend turns a batch of ``Request`` into one result per request, in order: a
``Response``, or an ``Exception``/``str`` describing why that one request failed. The worker
reads the next batch while one runs; ``default_batch_size`` sizes batches when the plan does
not.

A backend that batches *continuously* (an engine with its own scheduler: vLLM, SGLang) sets
``continuous = True`` and implements ``ContinuousBackend``: each request is ``submit``-ted the
moment it arrives, and ``poll`` advances the engine and returns the requests that finished,
so each answer leaves the worker as soon as it is done. ``capacity`` (e.g. ``max_num_seqs``)
tells the orchestrator how many requests to keep in flight.
"""

from __future__ import annotations

import importlib.metadata
import os
import stat
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from vlmhb.worker.protocol import Init, Request, Response

Result = Response | Exception | str

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF8": "gif",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"BM": "bmp",
    b"RIFF": "webp",
}


@dataclass
class LoadInfo:
    """What a backend reports once its model is loaded."""

    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """The interface of one inference backend, running inside the worker."""

    def load(self, init: Init) -> LoadInfo:
        """Load the model; raise with a one-line reason if it cannot."""
        ...

    def generate(self, batch: list[Request]) -> list[Result]:
        """Answer a batch, one result per request, in order."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


class Finished(NamedTuple):
    """One request a continuous engine has finished: its id and its result."""

    id: str
    result: Result


class ContinuousBackend(Backend, Protocol):
    """A backend whose engine takes requests as they arrive and returns each when done."""

    continuous: bool

    def capacity(self) -> int:
        """How many requests the engine runs at once (its ``max_num_seqs``)."""
        ...

    def submit(self, request: Request) -> Result | None:
        """Hand one request to the engine; a result now only if it was refused (bad input)."""
        ...

    def pending(self) -> int:
        """Requests submitted and not yet returned by ``poll``."""
        ...

    def poll(self) -> list[Finished]:
        """Advance the engine (one step, or until something finished); what finished since."""
        ...


DEFAULT_BATCH_SIZE = 8


def batch_size_of(backend: Backend, requested: int | None) -> int:
    """The plan's batch size, else the backend's ``default_batch_size``, else 8."""
    if requested:
        return max(1, int(requested))
    return max(1, int(getattr(backend, "default_batch_size", DEFAULT_BATCH_SIZE)))


def is_continuous(backend: Backend) -> bool:
    """Whether ``backend`` runs the continuous path (decided once it is loaded)."""
    return bool(getattr(backend, "continuous", False))


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are skipped)."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def check_image(path: str) -> None:
    """Raise ``ValueError`` if ``path`` is missing, empty, or not a known image format."""
    try:  # os-level: a request's images are checked on the hot path of every backend
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the worker
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"image not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"not a readable image: {path} ({exc.__class__.__name__})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"image not found: {path}")
        head = os.read(fd, 16)
    except OSError:
        raise ValueError(f"not a readable image: {path}") from None
    finally:
        os.close(fd)
    if not any(head.startswith(magic) for magic in _MAGIC):
        raise ValueError(f"not a readable image: {path}")
