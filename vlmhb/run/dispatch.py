"""Streams samples through a worker: a bounded window in flight, restarts, timeouts.

The dispatcher knows nothing of plans or datasets: it takes an iterator of ``Sample`` and
writes one answer line per sample into an ``AnswerLog``. It keeps a bounded window of
requests in flight (so an engine can batch and memory stays flat), sized by the capacity
the worker announces in ``ready`` (a continuous engine's ``max_num_seqs``, a static
backend's batch size): twice that, and at least ``DispatchSettings.window``. It recovers from a
worker that dies or hangs: everything that was in flight becomes a *suspect* and is sent
again alone, so the one sample that kills or hangs the worker is recorded as an error and
the innocent ones are answered.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vlmhb.errors import WorkerError
from vlmhb.fastjson import dumps_line
from vlmhb.run.folder import ANSWER_VERSION, AnswerLog
from vlmhb.run.worker_process import WorkerCommand, WorkerDied, WorkerFatal, WorkerProcess
from vlmhb.worker import protocol


@dataclass(slots=True)
class Sample:
    """One request to make and the facts its answer line keeps (read-only by convention:
    not frozen, which costs ~3 µs a sample; ``generation`` may be shared between samples)."""

    id: str
    doc_id: str
    doc_type: str
    field: str | None
    mode: str
    prompt: str
    system: str | None
    images: tuple[str, ...]
    generation: dict[str, Any] = dataclasses.field(default_factory=dict)
    problem: str | None = None  # a known defect (missing image...): recorded, never sent

    def request_line(self) -> bytes:
        """The encoded protocol request (the fields of ``protocol.Request``, as a plain dict)."""
        return dumps_line(
            {
                "id": self.id,
                "images": list(self.images),
                "prompt": self.prompt,
                "system": self.system,
                "doc_type": self.doc_type,
                "field": self.field,
                "generation": self.generation,
                "type": "request",
            }
        )


@dataclass(frozen=True)
class DispatchSettings:
    """How patient and how parallel the dispatcher is."""

    window: int = 64
    timeout_s: float = 600.0
    load_timeout_s: float = 1800.0
    max_restarts: int = 3  # consecutive restarts without a single answer in between
    poll_s: float = 0.25


@dataclass
class DispatchStats:
    """What happened during a dispatch, and when (``time.monotonic`` seconds)."""

    answered: int = 0
    errors: int = 0
    restarts: int = 0
    timeouts: int = 0
    ready: list[protocol.Ready] = dataclasses.field(default_factory=list)
    worker_start_s: float = 0.0  # spawn -> ready, every start summed
    restart_start_s: float = 0.0  # the part of it spent after generation began
    first_sent: float | None = None
    first_answer: float | None = None
    last_answer: float | None = None
    teardown_s: float = 0.0  # stopping the last worker

    @property
    def time_to_first_answer_s(self) -> float | None:
        """First request sent -> first answer received."""
        if self.first_sent is None or self.first_answer is None:
            return None
        return self.first_answer - self.first_sent

    @property
    def generation_s(self) -> float | None:
        """First request sent -> last answer received, less the restarts' load time."""
        if self.first_sent is None or self.last_answer is None:
            return None
        return max(0.0, self.last_answer - self.first_sent - self.restart_start_s)


@dataclass
class _Flight:
    sample: Sample
    sent: float
    attempt: int


def answer_line(
    sample: Sample, attempt: int, response: dict[str, Any] | None, error: str | None
) -> dict[str, Any]:
    """The ``answers.jsonl`` line for one sample."""
    response = response or {}
    return {
        "version": ANSWER_VERSION,
        "id": sample.id,
        "doc_id": sample.doc_id,
        "doc_type": sample.doc_type,
        "field": sample.field,
        "mode": sample.mode,
        "prompt": sample.prompt,
        "answer": response.get("text", "") if error is None else "",
        "error": error,
        "latency_s": response.get("latency_s"),
        "prompt_tokens": response.get("prompt_tokens"),
        "output_tokens": response.get("output_tokens"),
        "finish_reason": response.get("finish_reason"),
        "ttft_s": response.get("ttft_s"),
        **{key: response[key] for key in ("itl_s", "started_at") if response.get(key) is not None},
        "attempt": attempt,
    }


class Dispatcher:
    """Runs an iterator of samples through (re)started workers into an answer log."""

    def __init__(
        self,
        command: WorkerCommand,
        init: protocol.Init,
        log: AnswerLog,
        worker_log: Any,
        settings: DispatchSettings,
        on_answer: Callable[[dict[str, Any]], None] | None = None,
        on_worker: Callable[[WorkerProcess], None] | None = None,
        run_name: str = "run",
    ) -> None:
        self.command = command
        self.init = init
        self.log = log
        self.worker_log = worker_log
        self.settings = settings
        self.on_answer = on_answer
        self.on_worker = on_worker
        self.run_name = run_name
        self.stats = DispatchStats()
        self._worker: WorkerProcess | None = None
        self._in_flight: OrderedDict[str, _Flight] = OrderedDict()
        self._suspects: deque[tuple[Sample, int]] = deque()
        self._peeked: Sample | None = None
        self._failures_in_a_row = 0
        self._last_progress = time.monotonic()
        self._window = settings.window

    def _record(
        self, sample: Sample, attempt: int, response: dict | None, error: str | None
    ) -> None:
        line = answer_line(sample, attempt, response, error)
        if self.log.append(line):
            self.stats.answered += 1
            self.stats.errors += error is not None
            if self.on_answer:
                self.on_answer(line)

    def _start_worker(self) -> WorkerProcess:
        began = time.monotonic()
        worker = WorkerProcess(self.command, self.worker_log)
        try:
            ready = worker.start(self.init, self.settings.load_timeout_s)
        except WorkerFatal as exc:
            worker.kill()
            raise WorkerError(self.run_name, f"the worker could not load: {exc}") from exc
        except WorkerDied as exc:
            worker.kill()
            raise WorkerError(self.run_name, f"the worker died while loading: {exc}") from exc
        self.stats.ready.append(ready)
        took = time.monotonic() - began
        self.stats.worker_start_s += took
        if self.stats.first_sent is not None:
            self.stats.restart_start_s += took
        if ready.capacity:
            self._window = max(self.settings.window, 2 * ready.capacity)
        if self.on_worker:
            self.on_worker(worker)
        return worker

    def _lose_worker(self, reason: str) -> None:
        """The worker died or hung: kill it, and settle what it had in flight."""
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        self.stats.restarts += 1
        self._failures_in_a_row += 1
        flights = list(self._in_flight.values())
        self._in_flight.clear()
        if len(flights) == 1 and flights[0].attempt > 1:
            # It was sent alone as a suspect: it is the culprit.
            self._record(flights[0].sample, flights[0].attempt, None, reason)
            self._failures_in_a_row = 0
        else:
            self._suspects.extendleft(
                (flight.sample, flight.attempt + 1) for flight in reversed(flights)
            )
        if self._failures_in_a_row > self.settings.max_restarts:
            raise WorkerError(
                self.run_name,
                f"worker failed {self._failures_in_a_row} times in a row, last: {reason}",
            )

    def _send(self, sample: Sample, attempt: int, lines: list[bytes]) -> None:
        now = time.monotonic()
        if self.stats.first_sent is None:
            self.stats.first_sent = now
        self._in_flight[sample.id] = _Flight(sample, now, attempt)
        lines.append(sample.request_line())

    def _fill(self, pending: Iterator[Sample]) -> bool:
        """Top up the window; returns False when nothing is left anywhere.

        The requests of one top-up go to the worker as one write (one hand-over to the
        writer thread, not one per request).
        """
        assert self._worker is not None
        lines: list[bytes] = []
        try:
            if self._suspects:
                if not self._in_flight:
                    sample, attempt = self._suspects.popleft()
                    self._send(sample, attempt, lines)
                return True
            while len(self._in_flight) < self._window:
                new = self._next_new(pending)
                if new is None:
                    return bool(self._in_flight)
                self._send(new, 1, lines)
            return True
        finally:
            if lines:
                self._worker.send_raw(b"".join(lines))

    def _next_new(self, pending: Iterator[Sample]) -> Sample | None:
        """The next sample still to ask; known-bad ones are recorded on the way."""
        if self._peeked is not None:
            sample, self._peeked = self._peeked, None
            return sample
        for sample in pending:
            if sample.id in self.log.done:
                continue
            if sample.problem:
                self._record(sample, 1, None, sample.problem)
                continue
            return sample
        return None

    def run(self, samples: Iterable[Sample]) -> DispatchStats:
        """Answer every sample not yet in the log; the worker is always stopped at the end."""
        pending = iter(samples)
        try:
            while True:
                if self._worker is None:
                    if not self._has_work(pending):
                        break
                    self._worker = self._start_worker()
                    self._last_progress = time.monotonic()
                if not self._fill(pending):
                    break
                self._pump()
        finally:
            if self._worker is not None:
                worker, self._worker = self._worker, None
                began = time.monotonic()
                if self._in_flight:
                    worker.kill()
                else:
                    worker.stop()
                self.stats.teardown_s = time.monotonic() - began
            self.log.flush()
        return self.stats

    def _has_work(self, pending: Iterator[Sample]) -> bool:
        if self._suspects or self._in_flight or self._peeked is not None:
            return True
        self._peeked = self._next_new(pending)
        return self._peeked is not None

    def _pump(self) -> None:
        """Receive what the worker says within one poll period, then whatever else has
        already arrived (up to a window's worth); handle hangs and deaths."""
        timeout: float = self.settings.poll_s
        for _ in range(self._window):
            if self._worker is None or not self._receive(timeout):
                return
            timeout = 0.0

    def _receive(self, timeout: float) -> bool:
        """Handle one message; False when none came within ``timeout`` or the worker was lost."""
        assert self._worker is not None
        try:
            message = self._worker.receive_raw(timeout)
        except WorkerDied as exc:
            self._lose_worker(f"worker died (exit code {exc.returncode}): {exc.log_tail}")
            return False
        now = time.monotonic()
        if message is None:
            if self._in_flight:
                oldest = next(iter(self._in_flight.values()))
                waited = now - max(oldest.sent, self._last_progress)
                if waited > self.settings.timeout_s:
                    self.stats.timeouts += 1
                    self._lose_worker(f"timed out after {self.settings.timeout_s:g} s")
            return False
        kind = message.get("type")
        flight = self._in_flight.pop(message.get("id", ""), None)
        if kind == "fatal":
            self._lose_worker(f"worker fatal: {message.get('message')}")
            return False
        if flight is None:
            return True
        self._last_progress = now
        self._failures_in_a_row = 0
        if self.stats.first_answer is None:
            self.stats.first_answer = now
        self.stats.last_answer = now
        if kind == "response":
            self._record(flight.sample, flight.attempt, message, None)
        else:
            self._record(flight.sample, flight.attempt, None, str(message.get("message")))
        return True
