"""DejaVu fonts for Cyrillic text, loaded once per process, with a clear error when absent."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from vlmhb.errors import VlmhbError

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"))


class FontMissingError(VlmhbError):
    """The DejaVu fonts the generator draws with are not installed."""


@cache
def font(size: int, bold: bool = False, serif: bool = False) -> FreeTypeFont:
    """A DejaVu font of ``size`` pixels (Sans or Serif, regular or bold)."""
    from PIL import ImageFont

    name = f"DejaVu{'Serif' if serif else 'Sans'}{'-Bold' if bold else ''}.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return ImageFont.truetype(str(folder / name), size)
    raise FontMissingError(
        f"font {name} not found in {', '.join(map(str, FONT_DIRS))}; "
        "install the Debian package fonts-dejavu-core (apt-get install fonts-dejavu-core)"
    )
