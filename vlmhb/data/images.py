"""Resolve and check document image paths: inside the dataset folder, present, readable."""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path
from typing import Any


def resolve_image(root: Path, rel: str) -> tuple[Path, str | None]:
    """Absolute path of ``rel`` under ``root`` and the problem with it, if any.

    Absolute paths and paths escaping ``root`` (``..``, symlinks pointing out) are refused.
    The image header is read (cheap: the pixels are not decoded).
    """
    if not rel or not isinstance(rel, str):
        return root, f"image path {rel!r} is empty or not a string"
    if os.path.isabs(rel):
        return (
            Path(rel),
            f"image path {rel!r} is absolute; use a path relative to the dataset folder",
        )
    # os.path on strings: pathlib's overhead is most of the cost on 100,000-document datasets
    base = _real_dir(str(root))
    real = _real_path(base, rel)
    path = Path(real)
    if not real.startswith(base.rstrip(os.sep) + os.sep):
        return path, f"image path {rel!r} escapes the dataset folder"
    if not os.path.isfile(real):
        return path, f"image {rel!r} is missing"
    return path, check_image(path, rel)


def _real_path(base: str, rel: str) -> str:
    """``realpath(base/rel)``, with the folders' resolution cached (one lstat per image)."""
    if ".." in rel.replace("\\", "/").split("/"):
        return os.path.realpath(os.path.join(base, rel))  # '..' after a symlink: the OS decides
    folder, name = os.path.split(os.path.join(base, rel))
    candidate = os.path.join(_real_dir(folder), name)
    return os.path.realpath(candidate) if os.path.islink(candidate) else candidate


@functools.lru_cache(maxsize=4096)
def _real_dir(folder: str) -> str:
    return os.path.realpath(folder)


def forget_folders() -> None:
    """Drop the cached folder resolutions (each dataset read starts from what is on disk)."""
    _real_dir.cache_clear()


def check_image(path: Path, label: str) -> str | None:
    """``None`` if ``path`` is an image whose size can be read, else a message naming ``label``.

    PNG and JPEG headers (nearly every document scan) are read here from the bytes the content
    hash needs anyway (one read per file); anything else, or a header that does not parse,
    goes to Pillow. Either way only the header is read, never the pixels, and an image over
    Pillow's decompression-bomb limit is a problem of its document.
    """
    from vlmhb.data.documents import read_digest

    try:
        _, head = read_digest(path)
    except OSError as exc:
        return f"image {label!r} is unreadable: {exc.__class__.__name__}"
    size = header_size(head)
    if size is None:
        return _check_with_pillow(path, label)
    limit = _pillow().MAX_IMAGE_PIXELS
    pixels = size[0] * size[1]
    if limit and pixels > 2 * limit:  # Pillow's own threshold for DecompressionBombError
        return (
            f"image {label!r} is too large to decode safely: Image size ({pixels} pixels) "
            f"exceeds limit of {2 * limit} pixels, could be decompression bomb DOS attack."
        )
    return None


def header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or baseline/progressive JPEG header; None otherwise."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return (width, height) if width and height else None
    if head[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", head[at + 2 : at + 4])
        if marker in _JPEG_FRAMES and at + 9 <= len(head):
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return (width, height) if width and height else None
        at += 2 + length
    return None


# Start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC) and markers without a length.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def _check_with_pillow(path: Path, label: str) -> str | None:
    Image = _pillow()
    UnidentifiedImageError = Image.UnidentifiedImageError
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header has been parsed
    except Image.DecompressionBombError as exc:  # a per-document problem, not a traceback
        return f"image {label!r} is too large to decode safely: {exc}"
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        return f"image {label!r} is unreadable: {exc.__class__.__name__}"
    return None


@functools.cache
def _pillow() -> Any:
    """``PIL.Image``, imported on first use (a ``from`` import per image costs ~20 % of a read)."""
    from PIL import Image

    return Image
