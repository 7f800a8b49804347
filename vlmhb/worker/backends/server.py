"""A managed inference server: the worker's child, in its own process group, always stopped.

Standard library only. ``ManagedServer`` starts one server command on a free 127.0.0.1 port,
copies its output line by line into the worker's stderr (the run's ``worker.log``) keeping
the last lines for error messages, waits for its health route, and stops its whole process
group (TERM, then KILL after a grace period).

No server outlives its worker, however the worker ends:

* ``stop`` at the end of the run (the backend's ``close``), and from an ``atexit`` hook;
* SIGTERM and SIGINT handlers that stop the group, then let the signal do what it did before;
* ``PR_SET_PDEATHSIG`` (Linux): the kernel signals the server's group leader when the worker
  dies by any means, ``kill -9`` included. With ``serve_shim`` that leader is a small
  supervisor that kills its whole group then, and also when it sees its parent pid change,
  so processes the server spawned itself (vLLM's engine core) go too.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

PR_SET_PDEATHSIG = 1
TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """The server exited or never became healthy; the message ends with its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def set_death_signal(signum: int) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux only).

    Also runs in a child between fork and exec (``preexec_fn``), so it never raises.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def die_with_parent() -> None:
    """``preexec_fn``: SIGKILL this child when the worker dies (the shim softens it to TERM)."""
    set_death_signal(signal.SIGKILL)


@dataclass(frozen=True)
class ServerCommand:
    """How to start a server and how to tell it is up."""

    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    health_path: str = "/health"
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root (``http://127.0.0.1:PORT/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def health_url(self) -> str:
        """The URL answering 200 once the server is ready."""
        return f"http://{self.host}:{self.port}{self.health_path}"


class ManagedServer:
    """One server process group owned by this worker."""

    def __init__(self, command: ServerCommand, log: IO[str] | None = None, name: str = "server"):
        self.command = command
        self.name = name
        self._log = log if log is not None else sys.stderr
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._previous: dict[int, Any] = {}
        self._stopped = False

    @property
    def pid(self) -> int | None:
        """The server leader's pid (also its process group id), once started."""
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Spawn the server in a new session (its own process group)."""
        env = dict(self.command.env)
        env["VLMHB_SERVE_PARENT"] = str(os.getpid())
        self.process = subprocess.Popen(
            self.command.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(target=self._copy_output, daemon=True, name="server-log")
        self._reader.start()
        atexit.register(self.stop)
        self._install_signal_handlers()
        print(
            f"[{self.name}] started pid {self.process.pid} on {self.command.host}:"
            f"{self.command.port}: {' '.join(self.command.argv)}",
            file=self._log,
            flush=True,
        )

    def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self._tail.append(line)
            # If the log is gone, keep draining so the server never blocks on a full pipe.
            with contextlib.suppress(OSError, ValueError):
                print(f"[{self.name}] {line}", file=self._log, flush=True)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()
        previous = self._previous.get(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            os.kill(os.getpid(), signum)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server printed, joined with `` | ``."""
        return " | ".join(list(self._tail)[-lines:]) or "(no output)"

    def wait_healthy(self, timeout_s: float, poll_s: float = 0.5) -> float:
        """Seconds until the health route answered 200; ``ServerStartError`` otherwise."""
        assert self.process is not None, "start() first"
        start = time.monotonic()
        while True:
            code = self.process.poll()
            if code is not None:
                self._drain()
                self.stop()
                raise ServerStartError(
                    f"{self.name} exited with code {code} before it was healthy; "
                    f"last output: {self.log_tail()}"
                )
            if _answers_ok(self.command.health_url):
                return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                self.stop()
                raise ServerStartError(
                    f"{self.name} not healthy at {self.command.health_url} after "
                    f"{timeout_s:g} s; last output: {self.log_tail()}"
                )
            time.sleep(poll_s)

    def _drain(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=2.0)

    def stop(self, grace_s: float = 5.0) -> None:
        """TERM the whole process group, KILL what is left after ``grace_s``. Idempotent."""
        if self.process is None or self._stopped:
            return
        self._stopped = True
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_s)
        deadline = time.monotonic() + grace_s
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5.0)
        self._drain()
        for signum, previous in self._previous.items():
            if threading.current_thread() is threading.main_thread() and previous is not None:
                signal.signal(signum, previous)
        self._previous.clear()
        atexit.unregister(self.stop)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as reply:
            return 200 <= reply.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def watch_parent(parent: int, on_gone: Callable[[], None], poll_s: float = 0.5) -> threading.Thread:
    """Call ``on_gone`` once ``parent`` is no longer this process's parent (it died)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        on_gone()

    thread = threading.Thread(target=watch, daemon=True, name="parent-watch")
    thread.start()
    return thread
