"""Resolve and check document image paths: inside the dataset folder, present, readable."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any


def resolve_image(root: Path, rel: str) -> tuple[Path, str | None]:
    """Absolute path of ``rel`` under ``root`` and the problem with it, if any.

    Absolute paths and paths escaping ``root`` (``..``, symlinks pointing out) are refused.
    The image header is opened with Pillow (cheap: the pixels are not decoded).
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
    """``None`` if Pillow recognises ``path`` as an image, else a message naming ``label``."""
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
