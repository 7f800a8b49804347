"""The worker's main loop: handshake, batch what has arrived, answer, never die of one sample.

stdout is the protocol's: at start-up the real stdout is kept for the protocol and fd 1 is
pointed at stderr, so whatever a library prints lands in the worker log instead.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import IO

from vlmhb.worker import protocol
from vlmhb.worker.backends import load_backend
from vlmhb.worker.backends.base import Backend
from vlmhb.worker.lines import LineReader
from vlmhb.worker.watchdog import start_watchdog


def claim_stdout() -> IO[str]:
    """Keep the real stdout for the protocol; point fd 1 and ``sys.stdout`` at stderr."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


class Channel:
    """Writes protocol messages and flushes them as a group."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def send(self, message: object, flush: bool = True) -> None:
        self._out.write(protocol.encode(message))
        if flush:
            self._out.flush()

    def flush(self) -> None:
        self._out.flush()


def answer_batch(backend: Backend, batch: list[protocol.Request], channel: Channel) -> None:
    """Run one batch; if the batch as a whole fails, retry each request alone."""
    start = time.perf_counter()
    try:
        results = backend.generate(batch)
    except Exception:  # isolate the bad sample below
        if len(batch) == 1:
            results = [_exception_text()]
        else:
            for request in batch:
                answer_batch(backend, [request], channel)
            return
    elapsed = time.perf_counter() - start
    for request, result in zip(batch, results, strict=True):
        if isinstance(result, protocol.Response):
            if not result.latency_s:
                result.latency_s = elapsed
            channel.send(result, flush=False)
        else:
            channel.send(protocol.Error(id=request.id, message=str(result)), flush=False)
    channel.flush()


def _exception_text() -> str:
    exc_type, exc, _ = sys.exc_info()
    traceback.print_exc(file=sys.stderr)
    name = exc_type.__name__ if exc_type else "Error"
    return f"{name}: {exc}"


def serve(reader: LineReader, channel: Channel) -> int:
    """Handshake, then answer requests until ``shutdown`` or end of input."""
    first = reader.readline()
    if not first:
        return 1
    try:
        init = protocol.decode(first)
        if not isinstance(init, protocol.Init):
            raise protocol.ProtocolError(f"expected init, got {init.type}")
        if init.protocol != protocol.PROTOCOL_VERSION:
            raise protocol.ProtocolError(
                f"protocol {init.protocol} requested, this worker speaks "
                f"{protocol.PROTOCOL_VERSION}"
            )
        start = time.perf_counter()
        backend = load_backend(init.backend)
        info = backend.load(init)
    except Exception:  # anything at load time is fatal, said in one line
        channel.send(protocol.Fatal(message=_exception_text()))
        return 1
    channel.send(
        protocol.Ready(
            backend=init.backend,
            versions=info.versions,
            device=info.device,
            load_s=time.perf_counter() - start,
            pid=os.getpid(),
        )
    )
    batch_size = max(1, init.batch_size)
    while True:
        batch: list[protocol.Request] = []
        line = reader.readline()
        done = False
        while line:
            message = protocol.decode(line)
            if isinstance(message, protocol.Shutdown):
                done = True
                break
            if isinstance(message, protocol.Request):
                batch.append(message)
            if len(batch) >= batch_size:
                break
            line = reader.readline(timeout=0)  # take only what has already arrived
        if batch:
            answer_batch(backend, batch, channel)
        if done or line == b"":
            backend.close()
            return 0


def main() -> int:
    """Run the worker on this process's stdin/stdout."""
    start_watchdog()  # never outlive the orchestrator, nor let what we start outlive us
    channel = Channel(claim_stdout())
    try:
        return serve(LineReader(sys.stdin.fileno()), channel)
    except KeyboardInterrupt:
        return 130
