"""Scan artefacts: blur, noise, slight rotation, JPEG compression, low contrast.

A variant is a ``+``-joined list of degradations (``rotate+jpeg``) or ``clean``. Parameters are
drawn from the document's random stream and returned, so the annotations say exactly what was done.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

DEGRADATIONS = ("blur", "noise", "rotate", "jpeg", "contrast")
VARIANTS_HELP = "clean, " + ", ".join(DEGRADATIONS) + " (combine with +, e.g. rotate+jpeg)"


def parse_variant(variant: str) -> tuple[str, ...]:
    """The degradations of a variant; ``clean`` → ``()``. Unknown names raise ``ValueError``."""
    parts = tuple(p.strip() for p in variant.split("+") if p.strip())
    if parts in ((), ("clean",)):
        return ()
    unknown = [p for p in parts if p not in DEGRADATIONS]
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
        if part == "blur":
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
