"""Resolve and check document image paths: inside the dataset folder, present, readable.

Each image is opened once: the bytes read give both its size (PNG/JPEG headers are parsed
here, anything else by Pillow) and its SHA-256, which the dataset's content hash uses.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import struct
from pathlib import Path
from typing import Any, NamedTuple

from vlmhb.data.digests import remember_digest, whole_file

# Never block on a FIFO, never follow a symlink unawares, never leak the descriptor.
_OPEN = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


class ImageCheck(NamedTuple):
    """What checking one image found: where it is, what is wrong with it, its content digest."""

    path: str  # absolute, symlinks resolved ("rel" as given when it is absolute)
    problem: str | None
    digest: bytes | None  # raw SHA-256 of its bytes; None when it was not read


def resolve_image(root: Path, rel: str) -> tuple[Path, str | None]:
    """Absolute path of ``rel`` under ``root`` and the problem with it, if any.

    Absolute paths and paths escaping ``root`` (``..``, symlinks pointing out) are refused.
    The image header is read (cheap: the pixels are not decoded).
    """
    found = inspect_image(real_root(root), rel)
    return Path(found.path), found.problem


def real_root(root: Path | str) -> str:
    """``root`` with its symlinks resolved, as ``inspect_image`` takes it."""
    return _real_dir(str(root))


def inspect_image(base: str, rel: Any) -> ImageCheck:
    """Check the image ``rel`` names under the resolved folder ``base``; never opens a path
    outside it. A problem is a message naming ``rel``; nothing is raised."""
    if not rel or not isinstance(rel, str):
        return ImageCheck(base, f"image path {rel!r} is empty or not a string", None)
    if os.path.isabs(rel):
        return ImageCheck(
            str(Path(rel)),
            f"image path {rel!r} is absolute; use a path relative to the dataset folder",
            None,
        )
    inside = base.rstrip(os.sep) + os.sep
    # os.path on strings: pathlib's overhead is most of the cost on 100,000-document datasets
    if ".." in rel and ".." in rel.replace("\\", "/").split("/"):
        real, resolved = os.path.realpath(os.path.join(base, rel)), True  # the OS decides
    else:
        folder, name = os.path.split(os.path.join(base, rel))
        real, resolved = os.path.join(_real_dir(folder), name), False
    if not real.startswith(inside):
        return ImageCheck(real, f"image path {rel!r} escapes the dataset folder", None)
    try:
        # O_NOFOLLOW: the folders are resolved; a symlink as the file itself says ELOOP
        fd = os.open(real, _OPEN if resolved else _OPEN | _NO_FOLLOW)
    except OSError as exc:
        if exc.errno != errno.ELOOP or resolved:
            return ImageCheck(real, _open_problem(rel, exc), None)
        real = os.path.realpath(real)
        if not real.startswith(inside):
            return ImageCheck(real, f"image path {rel!r} escapes the dataset folder", None)
        try:
            fd = os.open(real, _OPEN)
        except OSError as exc2:
            return ImageCheck(real, _open_problem(rel, exc2), None)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ImageCheck(real, f"image {rel!r} is missing", None)
        digest, head = whole_file(fd, info.st_size)
    except OSError as exc:
        return ImageCheck(real, f"image {rel!r} is unreadable: {exc.__class__.__name__}", None)
    finally:
        os.close(fd)
    remember_digest(info, digest)
    return ImageCheck(real, _header_problem(head, real, rel), digest)


def _open_problem(rel: str, exc: OSError) -> str:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
        return f"image {rel!r} is missing"
    return f"image {rel!r} is unreadable: {exc.__class__.__name__}"


@functools.lru_cache(maxsize=4096)
def _real_dir(folder: str) -> str:
    return os.path.realpath(folder)


def forget_folders() -> None:
    """Drop the cached folder resolutions (each dataset read starts from what is on disk)."""
    _real_dir.cache_clear()


def check_image(path: Path, label: str) -> str | None:
    """``None`` if ``path`` is an image whose size can be read, else a message naming ``label``.

    Only the header is looked at, never the pixels; an image over Pillow's
    decompression-bomb limit is a problem of its document. The file's digest is remembered
    for the content hash.
    """
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            digest, head = whole_file(handle.fileno(), info.st_size)
    except OSError as exc:
        return f"image {label!r} is unreadable: {exc.__class__.__name__}"
    remember_digest(info, digest)
    return _header_problem(head, str(path), label)


def _header_problem(head: bytes, path: str, label: str) -> str | None:
    """PNG and JPEG sizes (nearly every document scan) come from ``head``; others from Pillow."""
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


def _check_with_pillow(path: str, label: str) -> str | None:
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
