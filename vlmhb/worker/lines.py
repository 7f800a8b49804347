"""A line reader over a raw file descriptor that can tell whether a full line is waiting.

The worker batches the requests that have already arrived; Python's buffered ``stdin``
hides buffered data from ``select``, so lines are split here from ``os.read`` chunks.
"""

from __future__ import annotations

import os
import select


class LineReader:
    """Reads newline-terminated lines from ``fd``; ``b""`` means end of input."""

    def __init__(self, fd: int, chunk: int = 1 << 16) -> None:
        self._fd = fd
        self._chunk = chunk
        self._buffer = bytearray()
        self._eof = False

    def _fill(self, timeout: float | None) -> bool:
        if self._eof:
            return False
        if timeout is not None:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return False
        data = os.read(self._fd, self._chunk)
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def readline(self, timeout: float | None = None) -> bytes | None:
        """The next line; ``None`` if none arrived within ``timeout``; ``b""`` at end of input."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if self._eof:
                rest = bytes(self._buffer)
                self._buffer.clear()
                return rest
            if not self._fill(timeout) and not self._eof:
                return None
