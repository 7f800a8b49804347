"""The worker's intake: a reader thread that decodes requests as they arrive into a queue.

The main thread runs the model; it never waits on the pipe while the engine has work, and
the requests that arrived meanwhile are already decoded when it asks for them.
``shutdown`` and end of input both end the intake (``ENDED``); a line that is not a valid
message is raised in the main thread, where it ends the worker as it always did.
"""

from __future__ import annotations

import queue
import threading

from vlmhb.worker import protocol
from vlmhb.worker.lines import LineReader

ENDED = object()  # shutdown received, or the orchestrator closed our stdin


class Intake:
    """Requests decoded on a daemon thread, taken by the main thread."""

    def __init__(self, reader: LineReader) -> None:
        self._reader = reader
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.ended = False
        self._thread = threading.Thread(target=self._read, name="vlmhb-intake", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            line = self._reader.readline()
            if not line:
                self._queue.put(ENDED)
                return
            try:
                message = protocol.decode(line)
            except protocol.ProtocolError as exc:
                self._queue.put(exc)
                return
            if isinstance(message, protocol.Shutdown):
                self._queue.put(ENDED)
                return
            if isinstance(message, protocol.Request):
                self._queue.put(message)

    def _unwrap(self, item: object) -> protocol.Request | None:
        if item is ENDED:
            self.ended = True
            return None
        if isinstance(item, Exception):
            self.ended = True
            raise item
        assert isinstance(item, protocol.Request)
        return item

    def wait(self) -> protocol.Request | None:
        """Block for the next request; ``None`` once the intake has ended."""
        if self.ended:
            return None
        return self._unwrap(self._queue.get())

    def take(self, limit: int | None = None) -> list[protocol.Request]:
        """The requests already decoded, up to ``limit``, without waiting."""
        taken: list[protocol.Request] = []
        while not self.ended and (limit is None or len(taken) < limit):
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            request = self._unwrap(item)
            if request is not None:
                taken.append(request)
        return taken
