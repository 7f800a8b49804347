"""What every backend provides, and the small helpers they share.

A backend turns a batch of ``Request`` into one result per request, in order: a
``Response``, or an ``Exception``/``str`` describing why that one request failed.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"image not found: {path}")
    with file.open("rb") as handle:
        head = handle.read(16)
    if not any(head.startswith(magic) for magic in _MAGIC):
        raise ValueError(f"not a readable image: {path}")
