"""The worker's main loop: handshake, then feed the engine, answer, never die of one sample.

Requests are decoded on a reader thread (``intake``) as they arrive. A static backend gets
them in batches of what has arrived (up to its batch size); a continuous engine gets each
one the moment it arrives and returns each answer the moment it is finished.

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
from vlmhb.worker.backends.base import (
    Backend,
    ContinuousBackend,
    Result,
    batch_size_of,
    is_continuous,
)
from vlmhb.worker.intake import Intake
from vlmhb.worker.lines import LineReader
from vlmhb.worker.watchdog import start_watchdog

BURST_GAP_S = 0.002


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

    def send_many(self, messages: list[protocol.Response | protocol.Error]) -> None:
        """Send answers finished together as one line (``protocol.encode_many``) and flush."""
        if messages:
            self._out.write(protocol.encode_many(messages))
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
    messages: list[protocol.Response | protocol.Error] = []
    for request, result in zip(batch, results, strict=True):
        if isinstance(result, protocol.Response):
            if not result.latency_s:
                result.latency_s = elapsed
            messages.append(result)
        else:
            messages.append(protocol.Error(id=request.id, message=str(result)))
    channel.send_many(messages)


def _exception_text() -> str:
    exc_type, exc, _ = sys.exc_info()
    traceback.print_exc(file=sys.stderr)
    name = exc_type.__name__ if exc_type else "Error"
    return f"{name}: {exc}"


def handshake(reader: LineReader, channel: Channel) -> tuple[Backend, int | None] | None:
    """Read ``init``, load the backend, say ``ready`` (or ``fatal``: then ``None``)."""
    first = reader.readline()
    if not first:
        return None
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
        continuous = is_continuous(backend)
        capacity = (
            backend.capacity()  # type: ignore[attr-defined]
            if continuous
            else batch_size_of(backend, init.batch_size)
        )
    except Exception:  # anything at load time is fatal, said in one line
        channel.send(protocol.Fatal(message=_exception_text()))
        return None
    channel.send(
        protocol.Ready(
            backend=init.backend,
            versions=info.versions,
            device=info.device,
            load_s=time.perf_counter() - start,
            pid=os.getpid(),
            capacity=capacity,
            continuous=continuous,
        )
    )
    return backend, (None if continuous else capacity)


def run_batches(backend: Backend, intake: Intake, channel: Channel, batch_size: int) -> None:
    """Static batching: what has arrived, up to ``batch_size``, per ``generate`` call.

    The intake keeps decoding while a batch runs, so the next batch is ready when it ends.
    """
    while (first := intake.wait()) is not None:
        answer_batch(backend, gather_burst(first, intake, batch_size), channel)


def run_engine(backend: ContinuousBackend, intake: Intake, channel: Channel) -> None:
    """Continuous batching: each request enters the engine as it arrives, each answer
    leaves as soon as the engine finishes it."""
    while True:
        if backend.pending():
            arrived = intake.take()
        else:
            first = intake.wait()  # idle engine: sleep until work or the end
            if first is None:
                return
            arrived = gather_burst(first, intake, backend.capacity())
        for request in arrived:
            try:
                refused = backend.submit(request)
            except Exception:  # one request the engine would not take
                refused = _exception_text()
            if refused is not None:
                channel.send(protocol.Error(id=request.id, message=str(refused)), flush=False)
        if backend.pending():
            channel.send_many([as_message(f.id, f.result) for f in backend.poll()])
        else:
            channel.flush()


def gather_burst(first: protocol.Request, intake: Intake, limit: int) -> list[protocol.Request]:
    """``first`` and the burst arriving with it, up to ``limit`` (the orchestrator sends its
    window at once): an idle engine's first step, or a static batch, gets it whole instead of
    whatever the reader thread had decoded so far. Waits only while requests keep coming
    (a 2 ms quiet gap ends it)."""
    arrived = [first]
    quiet_since = time.perf_counter()
    while len(arrived) < limit and time.perf_counter() - quiet_since < BURST_GAP_S:
        more = intake.take(limit - len(arrived))
        if more:
            arrived += more
            quiet_since = time.perf_counter()
        else:
            time.sleep(BURST_GAP_S / 8)
    return arrived


def as_message(request_id: str, result: Result) -> protocol.Response | protocol.Error:
    """The protocol message for one result."""
    if isinstance(result, protocol.Response):
        return result
    return protocol.Error(id=request_id, message=str(result))


def serve(reader: LineReader, channel: Channel) -> int:
    """Handshake, then answer requests until ``shutdown`` or end of input."""
    loaded = handshake(reader, channel)
    if loaded is None:
        return 1
    backend, batch_size = loaded
    intake = Intake(reader)
    try:
        if batch_size is None:
            run_engine(backend, intake, channel)  # type: ignore[arg-type]
        else:
            run_batches(backend, intake, channel, batch_size)
    except protocol.ProtocolError:
        raise
    except Exception:  # the engine itself broke: what is in flight is the orchestrator's
        channel.send(protocol.Fatal(message=_exception_text()))
        return 1
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
