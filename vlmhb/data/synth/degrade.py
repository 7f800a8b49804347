"""Scan artefacts: blur, noise, slight rotation, JPEG compression, low contrast, stamps.

A variant is a ``+``-joined list of degradations (``rotate+jpeg``) or ``clean``. Parameters are
drawn from the document's random stream and returned, so the annotations say exactly what was done.

A degradation may carry a *severity* 1-4 (``blur:3``; 0 is the clean document): fixed
parameters per level (:data:`SEVERITY`), so a robustness ladder (:func:`ladder_variants`)
measures accuracy against a known, growing damage; only directions and stamp positions come
from the document's random stream. ``stamp`` (a round seal and a signature over a field's
value) exists only with a severity.
"""

from __future__ import annotations

import math
import random
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

DEGRADATIONS = ("blur", "noise", "rotate", "jpeg", "contrast")
LADDER = (*DEGRADATIONS, "stamp")
LEVELS = (1, 2, 3, 4)
VARIANTS_HELP = (
    "clean, " + ", ".join(DEGRADATIONS) + " (combine with +, e.g. rotate+jpeg); "
    "with a severity 1-4: " + ", ".join(f"{name}:N" for name in LADDER)
)
# Parameters per severity level 1..4 (index 0 is the clean document).
SEVERITY: dict[str, tuple[float, ...]] = {
    "blur": (0.0, 0.8, 1.3, 1.9, 2.6),  # Gaussian radius, px
    "jpeg": (0, 60, 30, 15, 8),  # JPEG quality
    "noise": (0.0, 8.0, 16.0, 28.0, 42.0),  # Gaussian sigma, grey levels
    "rotate": (0.0, 1.0, 2.5, 4.0, 6.0),  # degrees, direction drawn
    "contrast": (1.0, 0.6, 0.42, 0.3, 0.2),  # contrast factor
    "stamp": (0.0, 0.3, 0.5, 0.7, 0.9),  # opacity of a seal and signature over a value
}


def ladder_variants(degradations: tuple[str, ...] = LADDER) -> tuple[str, ...]:
    """``clean`` and every ``<degradation>:<level>``: one robustness ladder per degradation."""
    return ("clean", *(f"{name}:{level}" for name in degradations for level in LEVELS))


def with_clean(variants: tuple[str, ...]) -> tuple[str, ...]:
    """``variants``, with ``clean`` first when a severity level asks for a ladder without it."""
    laddered = any(":" in part for variant in variants for part in variant.split("+"))
    clean = any(parse_variant(variant) == () for variant in variants)
    return ("clean", *variants) if laddered and not clean else variants


def _check_part(part: str) -> bool:
    name, sep, level = part.partition(":")
    if not sep:
        return name in DEGRADATIONS
    return name in LADDER and level.isdigit() and int(level) in LEVELS


def parse_variant(variant: str) -> tuple[str, ...]:
    """The degradations of a variant; ``clean`` → ``()``. Unknown names raise ``ValueError``."""
    parts = tuple(p.strip() for p in variant.split("+") if p.strip())
    if parts in ((), ("clean",)):
        return ()
    unknown = [p for p in parts if not _check_part(p)]
    if unknown:
        raise ValueError(f"unknown degradation {', '.join(unknown)}; known: {VARIANTS_HELP}")
    return parts


def apply_variant(
    image: Image.Image, parts: tuple[str, ...], rng: random.Random, boxes: dict[str, list[int]]
) -> tuple[Image.Image, dict[str, Any], int | None]:
    """Apply ``parts`` in order; returns the image, the parameters used, and a JPEG quality if any.

    ``boxes`` (field → [x0, y0, x1, y1]) are moved in place when the image is rotated.
    """
    from PIL import Image, ImageEnhance, ImageFilter

    params: dict[str, Any] = {}
    quality = None
    for part in parts:
        if ":" in part:
            name, level = part.split(":")
            image, used, jpeg = _apply_level(image, name, int(level), rng, boxes)
            params[part] = used
            quality = jpeg or quality
        elif part == "blur":
            radius = round(rng.uniform(1.0, 1.6), 2)
            image = image.filter(ImageFilter.GaussianBlur(radius))
            params[part] = {"radius": radius}
        elif part == "noise":
            sigma = round(rng.uniform(10, 18), 1)
            image = _noise(image, sigma, rng.getrandbits(32))
            params[part] = {"sigma": sigma}
        elif part == "rotate":
            angle = round(rng.choice((-1, 1)) * rng.uniform(1.0, 3.0), 2)
            _rotate_boxes(boxes, angle, image.size)
            image = image.rotate(
                angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(255, 255, 255)
            )
            params[part] = {"degrees": angle}
        elif part == "contrast":
            factor = round(rng.uniform(0.35, 0.5), 2)
            image = ImageEnhance.Contrast(image).enhance(factor)
            image = ImageEnhance.Brightness(image).enhance(1.15)
            params[part] = {"factor": factor}
        elif part == "jpeg":
            quality = rng.randint(18, 30)
            params[part] = {"quality": quality}
    return image, params, quality


def _apply_level(
    image: Image.Image, name: str, level: int, rng: random.Random, boxes: dict[str, list[int]]
) -> tuple[Image.Image, dict[str, Any], int | None]:
    """One degradation at a fixed severity; returns the image, parameters, JPEG quality."""
    from PIL import Image, ImageEnhance, ImageFilter

    value = SEVERITY[name][level]
    if name == "blur":
        return image.filter(ImageFilter.GaussianBlur(value)), {"radius": value}, None
    if name == "noise":
        return _noise(image, value, rng.getrandbits(32)), {"sigma": value}, None
    if name == "rotate":
        angle = rng.choice((-1, 1)) * value
        _rotate_boxes(boxes, angle, image.size)
        rotated = image.rotate(
            angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(255, 255, 255)
        )
        return rotated, {"degrees": angle}, None
    if name == "contrast":
        image = ImageEnhance.Contrast(image).enhance(value)
        return ImageEnhance.Brightness(image).enhance(1.15), {"factor": value}, None
    if name == "jpeg":
        return image, {"quality": int(value)}, int(value)
    # the same field at every level of one document: a ladder varies the severity only
    names = sorted(boxes)
    field = (
        names[zlib.crc32(repr([boxes[n] for n in names]).encode()) % len(names)] if names else None
    )
    stamped = _stamp(image, boxes.get(field) if field else None, value, 0.7 + 0.15 * level, rng)
    return stamped, {"opacity": value, "over": field}, None


def _stamp(
    image: Image.Image, box: list[int] | None, opacity: float, scale: float, rng: random.Random
) -> Image.Image:
    """A blue round seal and a signature stroke over ``box`` (the page centre without one)."""
    from PIL import Image, ImageDraw

    from vlmhb.data.synth.fonts import font

    width, height = image.size
    x0, y0, x1, y1 = box or (width // 3, height // 3, 2 * width // 3, height // 3 + 40)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    radius = round(max(60, (y1 - y0) * 2) * scale)
    alpha = round(255 * opacity)
    ink = (30, 60, 170, alpha)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=ink, width=5)
    inner = radius - 14
    pen.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), outline=ink, width=2)
    pen.text((cx, cy), "ДЛЯ ДОКУМЕНТОВ", font=font(max(14, radius // 5)), fill=ink, anchor="mm")
    points = [
        (x0 - 30 + i * (x1 - x0 + 60) / 12, cy + 18 * math.sin(i * 1.7 + rng.random()))
        for i in range(13)
    ]
    pen.line(points, fill=(20, 20, 90, alpha), width=4, joint="curve")
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _noise(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(seed).normal(0.0, sigma, pixels.shape[:2])
    noisy = pixels + noise.astype(np.int16)[..., None]
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def _rotate_boxes(boxes: dict[str, list[int]], degrees: float, size: tuple[int, int]) -> None:
    """Move boxes with a counter-clockwise rotation about the centre (Pillow's convention)."""
    cx, cy = size[0] / 2, size[1] / 2
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    for key, (x0, y0, x1, y1) in boxes.items():
        xs, ys = [], []
        for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            dx, dy = x - cx, y - cy
            xs.append(cx + dx * cos + dy * sin)
            ys.append(cy - dx * sin + dy * cos)
        boxes[key] = [round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))]
