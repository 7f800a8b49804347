"""data/images.py reads PNG and JPEG sizes from their headers as Pillow does (the fast path of
the dataset check), and hands every other format to Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from vlmhb.data.digests import file_digest
from vlmhb.data.images import check_image, header_size


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 4000}),  # an APP1 segment before the frame
    ],
)
def test_header_size_agrees_with_pillow(fmt: str, options: dict) -> None:
    for size in ((1, 1), (640, 480), (123, 4567)):
        buffer = io.BytesIO()
        Image.new("RGB", size, "white").save(buffer, fmt, **options)
        data = buffer.getvalue()
        assert header_size(data) == Image.open(io.BytesIO(data)).size == size


def test_other_formats_and_broken_headers_go_to_pillow(tmp_path: Path) -> None:
    bmp = tmp_path / "a.bmp"
    Image.new("RGB", (8, 4)).save(bmp)
    assert header_size(bmp.read_bytes()) is None and check_image(bmp, "a.bmp") is None
    broken = tmp_path / "b.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)  # a signature, then nothing
    assert header_size(broken.read_bytes()) is None
    assert "unreadable" in (check_image(broken, "b.png") or "")
    text = tmp_path / "c.jpg"
    text.write_text("not an image", "utf-8")
    assert "unreadable" in (check_image(text, "c.jpg") or "")


def test_an_oversized_header_is_refused_without_decoding(tmp_path: Path) -> None:
    """A PNG header claiming 40000 x 40000 pixels: over Pillow's bomb limit, said as Pillow says."""
    path = tmp_path / "huge.png"
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", 40000, 40000)  # rewrite IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # and its checksum
    path.write_bytes(bytes(data))
    problem = check_image(path, "huge.png") or ""
    assert "too large to decode safely" in problem and "1600000000 pixels" in problem
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)


def test_the_check_reads_each_file_once_for_the_content_hash_too(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "a.png"
    Image.new("RGB", (16, 16), "white").save(path)
    assert check_image(path, "a.png") is None
    path_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_digest(path) == path_digest
