"""A long env build says what it does; an index with an untrusted certificate gets a hint.

The build is real (the small ``tesseract`` recipe, uv from the session's cache or PyPI). The
TLS case runs real uv against a real local HTTPS index whose certificate nobody trusts (a
self-signed one made with ``openssl``), which is what a corporate proxy looks like to uv.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_envs import home, root, shared_uv_cache

from vlmhb.envs import ensure_env
from vlmhb.envs.build_progress import BuildProgress
from vlmhb.envs.uvtool import run_uv

__all__ = ["home", "root", "shared_uv_cache"]  # fixtures used here


def test_a_build_streams_uv_steps_with_elapsed_time(
    root: Path, home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    built = ensure_env("tesseract", root=root, home=home)
    assert not built.reused
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("env tesseract [")]
    assert "building from" in lines[0] and str(root / "lockfiles" / "tesseract.txt") in lines[0]
    assert any("] Installed " in line or "]: Installed " in line for line in lines), err
    assert lines[-1].endswith(": installed")
    ensure_env("tesseract", root=root, home=home)
    assert "env tesseract [" not in capfd.readouterr().err  # a reuse is silent and instant


def test_heartbeat_repeats_the_last_step_while_uv_is_silent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("vlmhb.envs.build_progress.HEARTBEAT_S", 0.5)
    with BuildProgress("big", "lockfiles/big.txt") as progress:
        progress.feed("Downloading torch (190.2MiB)")
        progress.feed(" + six==1.17.0")  # the package list is not repeated line by line
        threading.Event().wait(2.2)
    err = capsys.readouterr().err
    assert "env big [0 s]: Downloading torch (190.2MiB)" in err
    assert "still working (last: Downloading torch (190.2MiB))" in err
    assert "six" not in err


@pytest.fixture
def untrusted_index(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server with a self-signed certificate, on a free local port."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def test_an_untrusted_index_certificate_says_how_to_trust_the_system_store(
    untrusted_index: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    assert run_uv(["venv", "--quiet", str(venv)], cache_dir=tmp_path / "c").returncode == 0
    result = run_uv(
        ["pip", "install", "--python", str(venv / "bin" / "python"),
         "--index-url", untrusted_index, "six"],
        cache_dir=tmp_path / "c",
    )  # fmt: skip
    assert result.returncode != 0
    assert "certificate" in result.stderr
    tail = result.tail()
    assert "UV_NATIVE_TLS=1" in tail and "SSL_CERT_FILE=" in tail
