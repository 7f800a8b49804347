"""Document thumbnails as small JPEG data URLs, one per image file however many runs show it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

THUMB_PX = 200
JPEG_QUALITY = 60


def thumbnail_data_url(path: Path, size: int = THUMB_PX) -> str | None:
    """A downscaled JPEG of the image at ``path`` as a ``data:`` URL; None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as source:
            source.draft("RGB", (size, size))  # JPEG sources decode at a reduced scale
            img = source.convert("RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None  # an oversized image is shown as missing; the report goes on
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def contained_image(path: str, dataset_root: str | None) -> Path | None:
    """``path`` with symlinks resolved, if it lies inside the run's dataset folder, else None.

    The report opens only what the run itself could use: an image that escapes the dataset
    (``..``, an absolute path, a symlink pointing out) was an error at inference and is
    never read or linked here either.
    """
    if not path or not dataset_root:
        return None
    resolved = Path(path).resolve()
    return resolved if resolved.is_relative_to(Path(dataset_root).resolve()) else None


class ThumbnailStore:
    """De-duplicates images by resolved path: each file is embedded once, referenced by id."""

    def __init__(self, size: int = THUMB_PX) -> None:
        self.size = size
        self.urls: dict[str, str] = {}
        self._ids: dict[str, str | None] = {}
        self.missing: list[str] = []

    def add(self, path: str | Path) -> str | None:
        """The id of the thumbnail of ``path`` (made on first sight); None if unreadable."""
        key = str(Path(path).resolve()) if str(path) else ""
        if key in self._ids:
            return self._ids[key]
        url = thumbnail_data_url(Path(key), self.size) if key else None
        ident = None
        if url is not None:
            ident = f"i{len(self.urls)}"
            self.urls[ident] = url
        else:
            self.missing.append(key)
        self._ids[key] = ident
        return ident
