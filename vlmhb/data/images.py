"""Resolve and check document image paths: inside the dataset folder, present, readable."""

from __future__ import annotations

from pathlib import Path


def resolve_image(root: Path, rel: str) -> tuple[Path, str | None]:
    """Absolute path of ``rel`` under ``root`` and the problem with it, if any.

    Absolute paths and paths escaping ``root`` (``..``, symlinks pointing out) are refused.
    The image header is opened with Pillow (cheap: the pixels are not decoded).
    """
    if not rel or not isinstance(rel, str):
        return root, f"image path {rel!r} is empty or not a string"
    candidate = Path(rel)
    if candidate.is_absolute():
        return (
            candidate,
            f"image path {rel!r} is absolute; use a path relative to the dataset folder",
        )
    path = (root / candidate).resolve()
    if not path.is_relative_to(root.resolve()):
        return path, f"image path {rel!r} escapes the dataset folder"
    if not path.is_file():
        return path, f"image {rel!r} is missing"
    return path, check_image(path, rel)


def check_image(path: Path, label: str) -> str | None:
    """``None`` if Pillow recognises ``path`` as an image, else a message naming ``label``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header has been parsed
    except Image.DecompressionBombError as exc:  # a per-document problem, not a traceback
        return f"image {label!r} is too large to decode safely: {exc}"
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        return f"image {label!r} is unreadable: {exc.__class__.__name__}"
    return None
