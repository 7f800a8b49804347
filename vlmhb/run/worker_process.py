"""``WorkerProcess``: the one owner of a worker subprocess.

It spawns the worker (never through a shell), sends ``init`` and waits for ``ready``,
writes requests from a writer thread (so a full pipe never blocks the runner), reads
messages with a timeout, and shuts the worker down: ``shutdown``, then terminate, then kill.
The worker's stderr goes to a log file in the run folder.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from vlmhb.fastjson import loads
from vlmhb.worker import protocol
from vlmhb.worker.lines import LineReader


@dataclass(frozen=True)
class WorkerCommand:
    """How to start a worker: argv, environment, and what to record about it."""

    argv: list[str]
    env: dict[str, str]
    description: dict[str, object] = field(default_factory=dict)


class WorkerDied(RuntimeError):
    """The worker's stdout closed (it exited or crashed)."""

    def __init__(self, returncode: int | None, log_tail: str) -> None:
        self.returncode = returncode
        self.log_tail = log_tail
        super().__init__(f"worker exited with code {returncode}: {log_tail}")


class WorkerFatal(RuntimeError):
    """The worker said ``fatal`` (typically at load time)."""


class WorkerProcess:
    """A running worker; use as a context manager so it is always stopped."""

    def __init__(self, command: WorkerCommand, log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self.ready: protocol.Ready | None = None
        self._log = log_path.open("ab")
        self._proc = subprocess.Popen(
            command.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=command.env,
            close_fds=True,
            start_new_session=True,  # Ctrl-C reaches the runner only; it stops the worker
        )
        assert self._proc.stdout is not None and self._proc.stdin is not None
        self._reader = LineReader(self._proc.stdout.fileno())
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._unbatched: deque[dict] = deque()  # messages of a batch line not handed out yet
        self._writer = threading.Thread(target=self._write_loop, daemon=True)
        self._writer.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._proc.pid

    def _write_loop(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        while True:
            item = self._outbox.get()
            chunks = [item]
            while item is not None:
                try:
                    item = self._outbox.get_nowait()
                except queue.Empty:
                    break
                chunks.append(item)
            data = b"".join(c for c in chunks if c is not None)
            try:
                if data:
                    stdin.write(data)
                    stdin.flush()
                if chunks[-1] is None:
                    stdin.close()
                    return
            except (BrokenPipeError, OSError, ValueError):
                return

    def send(self, message: object) -> None:
        """Queue one message for the worker."""
        self._outbox.put(protocol.encode(message).encode("utf-8"))

    def send_raw(self, line: bytes) -> None:
        """Queue one already-encoded JSON line."""
        self._outbox.put(line)

    def receive(self, timeout: float | None) -> protocol.Message | None:
        """The next message, or ``None`` after ``timeout`` s; raises ``WorkerDied`` at EOF."""
        while True:
            data = self.receive_raw(timeout)
            if data is None:
                return None
            try:
                return protocol.from_dict(data)
            except protocol.ProtocolError:
                self._log.write(b"[vlmhb: malformed protocol message] " + repr(data).encode())

    def receive_raw(self, timeout: float | None) -> dict | None:
        """The next message as a dict (the fast path for responses); lines that are not
        protocol messages (a library writing to the real stdout) go to the worker log.
        A ``batch`` line is handed out one message at a time."""
        if self._unbatched:
            return self._unbatched.popleft()
        while True:
            line = self._reader.readline(timeout)
            if line is None:
                return None
            if line == b"":
                raise WorkerDied(self._wait(), self.log_tail())
            try:
                data = loads(line)
            except ValueError:
                self._log.write(b"[vlmhb: non-protocol line on stdout] " + line)
                continue
            if isinstance(data, dict) and data.get("type") == protocol.BATCH:
                self._unbatched.extend(protocol.unbatched(data))
                if self._unbatched:
                    return self._unbatched.popleft()
                continue
            if isinstance(data, dict) and "type" in data:
                return data
            self._log.write(b"[vlmhb: non-protocol line on stdout] " + line)

    def start(self, init: protocol.Init, timeout: float) -> protocol.Ready:
        """Send ``init`` and wait for ``ready``; raise ``WorkerFatal`` / ``WorkerDied``."""
        self.send(init)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFatal(f"no ready message within {timeout:.0f} s")
            message = self.receive(left)
            if isinstance(message, protocol.Ready):
                self.ready = message
                return message
            if isinstance(message, protocol.Fatal):
                raise WorkerFatal(message.message)

    def _wait(self) -> int | None:
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the worker's stderr log, for error messages."""
        self._log.flush()
        try:
            text = self.log_path.read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return ""
        return " | ".join(line for line in text.strip().splitlines()[-lines:])

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Ask the worker to shut down, then terminate, then kill."""
        if self._proc.poll() is None:
            self.send(protocol.Shutdown())
            self._outbox.put(None)
            try:
                self._proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._close()

    def kill(self) -> None:
        """Kill the worker and its process group now (a hung or timed-out worker)."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, 15)
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, 9)
                self._proc.wait()
        self._outbox.put(None)

    def _close(self) -> int | None:
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream:
                    stream.close()
        self._log.close()
        return self._proc.returncode

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.stop()
        else:
            self.kill()
            self._close()
