"""What an env build is doing, said on stderr while it runs: uv's steps and the time elapsed.

uv prints its steps as plain lines on stderr when it is not talking to a terminal
(``Resolved 93 packages``, ``Downloading torch (190.2MiB)``, ``Prepared 93 packages``,
``Installed 93 packages``). ``BuildProgress`` turns them into lines like
``env hf-cpu [12 s]: Downloading torch (190.2MiB)`` and, when uv is silent for a while (a big
download), repeats the last step with the time elapsed, so a long build never looks hung.
Plain lines, so they read the same in a terminal, under the live run board and in CI logs.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

HEARTBEAT_S = 15.0
_SHOWN = ("Resolved", "Downloading", "Prepared", "Installed", "Uninstalled", "Building", "Built")


class BuildProgress:
    """Progress lines of one env build; use as a context manager, feed it uv's lines."""

    def __init__(self, env_name: str, what: str, stream: TextIO | None = None) -> None:
        self.env_name = env_name
        self.what = what
        self._stream = stream
        self._started = time.monotonic()
        self._last_step = "starting"
        self._last_said = self._started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> BuildProgress:
        self._say(f"building from {self.what} (one-time; later runs reuse it)")
        self._ticker.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stop.set()
        self._ticker.join(timeout=1)
        self._say("installed" if exc_type is None else "install failed")

    def feed(self, line: str) -> None:
        """One line of uv's stderr."""
        text = line.strip()
        if text.startswith(_SHOWN):
            with self._lock:
                self._last_step = text
            self._say(text)

    def elapsed(self) -> float:
        """Seconds since the build started."""
        return time.monotonic() - self._started

    def _say(self, text: str) -> None:
        stream = self._stream or sys.stderr  # looked up late: a live display may redirect it
        with self._lock:
            self._last_said = time.monotonic()
            print(f"env {self.env_name} [{self.elapsed():.0f} s]: {text}", file=stream, flush=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self._last_said >= HEARTBEAT_S:
                self._say(f"still working (last: {self._last_step})")
