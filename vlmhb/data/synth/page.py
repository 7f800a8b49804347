"""A drawing surface that remembers what it printed: the transcription and each field's box."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vlmhb.data.synth.fonts import font

if TYPE_CHECKING:
    from PIL import Image
    from PIL.ImageFont import FreeTypeFont

Color = tuple[int, int, int]
INK: Color = (20, 20, 25)
GREY: Color = (85, 85, 95)


@dataclass
class Page:
    """A Pillow image plus the text segments drawn on it (baseline-anchored, left to right)."""

    image: Image.Image
    segments: list[tuple[int, int, int, str]] = field(default_factory=list)
    boxes: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def blank(cls, width: int, height: int, paper: Color) -> Page:
        """A new page of one paper colour."""
        from PIL import Image

        return cls(Image.new("RGB", (width, height), paper))

    @property
    def draw(self):
        """An ``ImageDraw`` on the page."""
        from PIL import ImageDraw

        return ImageDraw.Draw(self.image)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        face: FreeTypeFont,
        fill: Color = INK,
        key: str | None = None,
    ) -> int:
        """Draw ``text`` on baseline ``y``; record it (its box under ``key``); return the end x."""
        self.draw.text((x, y), text, font=face, fill=fill, anchor="ls")
        x0, y0, x1, y1 = self.draw.textbbox((x, y), text, font=face, anchor="ls")
        self.segments.append((y, x, x1, text))
        if key is not None:
            old = self.boxes.get(key)
            box = [x0, y0, x1, y1]
            self.boxes[key] = (
                box
                if old is None
                else [min(old[0], x0), min(old[1], y0), max(old[2], x1), max(old[3], y1)]
            )
        return x1

    def labelled(
        self,
        x: int,
        y: int,
        label: str,
        value: str,
        key: str,
        width: int,
        size: int = 30,
        line_height: int = 44,
    ) -> int:
        """``label  value`` on one baseline, value wrapped in ``width``; returns the next y."""
        end = self.text(x, y, label, font(size - 6), GREY)
        value_x = end + 18
        for line in wrap(value, font(size), x + width - value_x):
            self.text(value_x, y, line, font(size), INK, key)
            y += line_height
        return y

    def transcript(self) -> str:
        """The printed text by lines (segments on a baseline joined by a space unless touching)."""
        rows: dict[int, list[tuple[int, int, str]]] = {}
        for y, x, end, text in self.segments:
            rows.setdefault(y, []).append((x, end, text))
        lines = []
        for y in sorted(rows):
            line, last_end = "", None
            for x, end, text in sorted(rows[y]):
                glued = last_end is not None and x <= last_end + 2
                line += text if glued or last_end is None else " " + text
                last_end = end
            lines.append(line)
        return "\n".join(lines)


def wrap(text: str, face: FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap to lines no wider than ``width`` pixels (one long word may overflow)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and face.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines
