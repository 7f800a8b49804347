"""SHA-256 of files' bytes, memoised for the process by (device, inode, size, mtime).

The image check reads every image once and remembers its digest here, so the dataset's
content hash and the answer cache's image keys that follow cost a ``stat``, not a read.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

_KEY = struct.Struct("<QQqq")  # st_dev, st_ino, st_size, st_mtime_ns: 32 bytes a file
_DIGESTS: dict[bytes, bytes] = {}  # key → raw SHA-256 (~150 B an image in all)
_WHOLE_FILE = 32 << 20  # files up to this size are read in one call; larger ones in chunks
HEAD_BYTES = 256 << 10  # what ``whole_file`` keeps of a large file (image headers live here)


def file_digest(path: Path | str) -> str:
    """Hex SHA-256 of a regular file's bytes; ``missing`` if it is not one or is unreadable."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return "missing"
        cached = _DIGESTS.get(_key(info))
        if cached is not None:
            return cached.hex()
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            digest, _ = whole_file(handle.fileno(), info.st_size)
    except OSError:
        return "missing"
    remember_digest(info, digest)
    return digest.hex()


def whole_file(fd: int, size: int) -> tuple[bytes, bytes]:
    """Raw SHA-256 of everything ``fd`` holds from its position, and the first bytes read
    (all of them up to 32 MiB, else the first 256 KiB). Raises ``OSError``."""
    if size <= _WHOLE_FILE:
        data = os.read(fd, size + 1)  # one more byte: a file that grew is read to its end
        if len(data) != size:  # it grew, shrank, or the read came back short: read to EOF
            data += _rest(fd)
        return hashlib.sha256(data).digest(), data
    sha = hashlib.sha256()
    head = b""
    while chunk := os.read(fd, 1 << 20):
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        sha.update(chunk)
    return sha.digest(), head


def _rest(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def remember_digest(info: os.stat_result, digest: bytes) -> None:
    """Keep ``digest`` as the content of the file ``info`` describes (until it changes)."""
    _DIGESTS[_key(info)] = digest


def _key(info: os.stat_result) -> bytes:
    return _KEY.pack(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
