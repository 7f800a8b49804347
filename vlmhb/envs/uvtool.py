"""The one door to uv: find the binary, run it with a controlled environment.

uv comes from the ``uv`` Python package (``uv.find_uv_bin()``), with ``uv`` on ``PATH`` as the
fallback. Every call gets ``UV_PYTHON_DOWNLOADS=never`` (uv must use the interpreter we name,
never fetch one) and the cache folder we choose; ``shell=False`` always.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmhb.errors import EnvError

STDERR_TAIL_LINES = 25


@dataclass(frozen=True)
class UvResult:
    """What one uv call returned."""

    returncode: int
    stdout: str
    stderr: str

    def tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last lines of stderr (or stdout when stderr is empty), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        kept = [ln for ln in text.splitlines() if not ln.startswith("Using Python ")]
        hints = [hint for hint in (local_version_hint(text), tls_hint(text)) if hint]
        return "\n".join(kept[-lines:] + hints)


def local_version_hint(text: str) -> str:
    """A hint when uv could not find a local-version pin (``torch==2.13.0+cpu``)."""
    match = re.search(r"no version of ([\w.-]+==[\w.!]+\+[\w.]+)", text)
    if not match:
        return ""
    where = os.environ.get("UV_FIND_LINKS")
    if where:
        return f"hint: {match.group(1)} is a local build; it is not in UV_FIND_LINKS={where}"
    return (
        f"hint: {match.group(1)} is a local build, not on PyPI: point UV_FIND_LINKS at the "
        "folder or index holding its wheel (e.g. UV_FIND_LINKS=/opt/wheels)"
    )


_TLS_FAILURE = re.compile(
    r"invalid peer certificate|UnknownIssuer|certificate verify failed|"
    r"self[- ]signed certificate|unable to get local issuer certificate",
    re.IGNORECASE,
)


def tls_hint(text: str) -> str:
    """A hint when uv could not verify the package index's TLS certificate (proxy, private CA)."""
    if not _TLS_FAILURE.search(text):
        return ""
    return (
        "hint: uv could not verify the package index's TLS certificate (a corporate proxy or "
        "private CA?): set UV_NATIVE_TLS=1 to trust the system's certificate store, or "
        "SSL_CERT_FILE=/path/to/ca-bundle.pem (e.g. /etc/ssl/certs/ca-certificates.crt)"
    )


def find_uv(env: str = "-") -> Path:
    """Absolute path of the uv binary, or a one-line ``EnvError`` saying how to get it."""
    try:
        import uv  # the PyPI package shipping the binary

        found = Path(uv.find_uv_bin())
        if found.is_file():
            return found
    except (ImportError, FileNotFoundError):
        pass
    on_path = shutil.which("uv")
    if on_path:
        return Path(on_path)
    raise EnvError(
        env,
        "uv not found: install it with `pip install uv` (or put `uv` on PATH); "
        "where uv cannot run, set VLMHB_ENV_BUILDER=virtualenv",
    )


def uv_environ(cache_dir: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a uv call: the caller's, pinned to no downloads and our cache."""
    environ = dict(os.environ)
    environ["UV_PYTHON_DOWNLOADS"] = "never"
    environ.pop("VIRTUAL_ENV", None)  # never let an active venv leak into uv's target choice
    if cache_dir is not None:
        environ["UV_CACHE_DIR"] = str(cache_dir)
    if extra:
        environ.update(extra)
    return environ


def run_uv(
    args: Sequence[str | os.PathLike[str]],
    *,
    cache_dir: Path | None,
    cwd: Path | None = None,
    env_name: str = "-",
    extra_env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> UvResult:
    """Run ``uv ARGS`` and return its output; never raises on a non-zero exit.

    ``on_line`` sees each stderr line as uv prints it (progress of a long install).
    """
    cmd = [str(find_uv(env_name)), *(str(a) for a in args)]
    if on_line is not None:
        return _run_streaming(cmd, cwd, uv_environ(cache_dir, extra_env), on_line)
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=uv_environ(cache_dir, extra_env),
        capture_output=True,
        text=True,
        check=False,
        start_new_session=False,
    )
    return UvResult(proc.returncode, proc.stdout, proc.stderr)


def _run_streaming(
    cmd: list[str], cwd: Path | None, env: dict[str, str], on_line: Callable[[str], None]
) -> UvResult:
    """``subprocess.run`` with stderr read line by line (stdout drained by a thread)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
    reader.start()
    err = []
    for line in stderr:
        err.append(line)
        on_line(line.rstrip("\n"))
    returncode = proc.wait()
    reader.join()
    return UvResult(returncode, "".join(out), "".join(err))


def uv_version(env_name: str = "-") -> str:
    """``uv --version`` without the program name, e.g. ``"0.13.9"``."""
    result = run_uv(["--version"], cache_dir=None, env_name=env_name)
    parts = result.stdout.split()
    return parts[1] if len(parts) > 1 else result.stdout.strip()
