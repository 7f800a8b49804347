"""Drive an asyncio engine API (one coroutine per request) from the worker's engine loop.

An engine whose offline API is ``async`` (SGLang's ``Engine.async_generate``) gets each
request as a task on this thread's event loop the moment it is submitted; ``poll`` runs the
loop until at least one task finished (or ``wait_s`` passed, so that requests arriving
meanwhile are submitted without waiting for a finish), and returns what finished. All on the
main thread, the loop the engine was built on: no thread-safety questions for the engine.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from vlmhb.worker.backends.base import Finished, Result

Convert = Callable[[str, Any, float], Result]


class AsyncRequests:
    """The requests in flight on one event loop, as tasks."""

    def __init__(self, wait_s: float = 0.005) -> None:
        try:
            self.loop = asyncio.get_event_loop()
        except RuntimeError:  # no loop on this thread yet
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
        self.wait_s = wait_s
        self._tasks: dict[asyncio.Future[Any], tuple[str, float, Convert]] = {}

    def submit(self, request_id: str, call: Awaitable[Any], convert: Convert) -> None:
        """Start ``call`` for ``request_id``; ``convert(id, output, latency_s)`` maps its output."""
        task = asyncio.ensure_future(call, loop=self.loop)
        self._tasks[task] = (request_id, time.perf_counter(), convert)

    def pending(self) -> int:
        """Tasks not yet returned by ``poll``."""
        return len(self._tasks)

    def poll(self) -> list[Finished]:
        """Run the loop until something finished or ``wait_s`` passed; what finished."""
        if not self._tasks:
            return []
        done, _ = self.loop.run_until_complete(
            asyncio.wait(self._tasks, timeout=self.wait_s, return_when=asyncio.FIRST_COMPLETED)
        )
        finished = []
        for task in done:
            request_id, started, convert = self._tasks.pop(task)
            error = task.exception()
            if error is not None:  # this request failed; the engine goes on
                traceback.print_exception(error)
                finished.append(Finished(request_id, f"{type(error).__name__}: {error}"))
                continue
            latency = time.perf_counter() - started
            finished.append(Finished(request_id, convert(request_id, task.result(), latency)))
        return finished
