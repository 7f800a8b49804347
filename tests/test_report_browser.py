"""The generated report opened from disk by real headless Chromium (Debian's ``chromium``).

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (fd 3 in,
fd 4 out, NUL-terminated JSON): no port, no network. The test collects JS exceptions and
``console.error`` calls, checks the leaderboard rows, that plotly drew its charts
(``svg.main-svg``) and that the drill-down renders, then saves a screenshot.
``benchmarks/report.py`` reuses ``Chromium`` to time page loads.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vlmhb.report import build_report

try:
    from tests.fixtures_runs import make_runs
except ImportError:  # pytest's rootdir-relative import mode
    from fixtures_runs import make_runs  # type: ignore[no-redef]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
    "--window-size=1400,1000",
]


class Chromium:
    """A headless Chromium driven over ``--remote-debugging-pipe``; one page, one session."""

    def __init__(self, binary: str = CHROMIUM or "chromium", timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="vlmhb-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # in the child: fd 3 reads commands, fd 4 writes replies
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
            for fd in (3, 4):  # dup2 onto itself keeps close-on-exec: clear it
                os.set_inheritable(fd, True)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=wire_fds,
            close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(
            target=lambda: self._stderr.extend(self.proc.stderr or []), daemon=True
        ).start()
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=True)

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._inbox.put(json.loads(msg))

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; events seen meanwhile go to ``events``."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._inbox.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply is None:
                raise RuntimeError("chromium exited: " + b"".join(self._stderr)[-2000:].decode())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str) -> Any:
        """Evaluate JS in the page; return its value (awaiting promises)."""
        out = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in out:
            raise RuntimeError(str(out["exceptionDetails"]))
        return out["result"].get("value")

    def open(self, path: Path) -> float:
        """Navigate to a file and wait for its load event; return seconds taken."""
        start = time.monotonic()
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self.wait_for("document.readyState === 'complete'")
        return time.monotonic() - start

    def wait_for(self, expression: str, timeout: float | None = None) -> None:
        """Poll a JS condition until it holds (a page still loading reads as not yet)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        probe = f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
        while True:
            try:
                if self.evaluate(probe):
                    return
            except RuntimeError:  # the execution context was replaced by the navigation
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(0.05)

    def errors(self) -> list[str]:
        """JS exceptions, console.error/assert calls and error-level log entries seen so far."""
        self.evaluate("1")  # flush pending events into ``events``
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") in (
                "error",
                "assert",
            ):
                out.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
                )
            elif ev.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"].get("text", ""))
        return out

    def screenshot(self, path: Path) -> None:
        """Save a full-page PNG."""
        data = self.call(
            "Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True
        )["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Close the browser and remove its profile."""
        try:
            self.call("Browser.close")
        except (RuntimeError, queue.Empty, OSError):
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        shutil.rmtree(self._profile, ignore_errors=True)


pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    make_runs(root, n_docs=12)
    return build_report([root / "runs"], root / "out" / "report.html").html


def test_report_renders_in_headless_chromium(report: Path) -> None:
    browser = Chromium()
    try:
        browser.open(report)
        browser.wait_for("document.documentElement.hasAttribute('data-ready-ms')")
        browser.wait_for("document.querySelectorAll('svg.main-svg').length >= 6")
        rows = browser.evaluate(
            "Array.from(document.querySelectorAll('#leaderboard tr.lb-row'))"
            ".map(r => r.cells[1].textContent)"  # cells[0] is the run's name
        )
        assert len(rows) == 6
        assert rows[0] == "Qwen/Qwen2-VL-7B-Instruct"  # best exact match first
        assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") >= 6
        heat_cells = browser.evaluate(
            "document.querySelector('#heat-field .hm, #heat-field .heatmaplayer') !== null"
        )
        assert heat_cells
        # Russian text reaches the DOM intact and the drill-down lists documents with diffs.
        assert "Иванов" in browser.evaluate(
            "document.body.innerText"
        ) or "ГУ МВД" in browser.evaluate("document.body.innerText")
        n_docs = browser.evaluate("document.querySelectorAll('#drill .doc').length")
        assert 0 < n_docs <= 20
        assert browser.evaluate("document.querySelectorAll('#drill del, #drill ins').length") > 0
        assert (
            browser.evaluate(
                "(async () => { const i = document.querySelector('#drill .thumb img');"
                " i.scrollIntoView(); await i.decode(); return i.naturalWidth; })()"
            )
            > 0
        )
        browser.evaluate("window.scrollTo(0, 0)")
        # The errors-only filter hides correct answers.
        browser.evaluate(
            "(() => { const c = document.querySelector('#drill .errors-only');"
            " c.checked = true; c.dispatchEvent(new Event('change')); })()"
        )
        assert browser.evaluate("document.querySelectorAll('#drill tr.ok').length") == 0
        assert browser.evaluate("document.querySelectorAll('#drill tr.bad').length") > 0
        # Click to enlarge opens the overlay.
        browser.evaluate("document.querySelector('#drill .thumb img').click()")
        assert browser.evaluate("document.getElementById('overlay').classList.contains('open')")
        browser.evaluate("document.getElementById('overlay').click()")
        shot = report.with_name("report.png")
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000
        assert browser.errors() == []
    finally:
        browser.close()


def test_report_has_no_network_references(report: Path) -> None:
    text = report.read_text("utf-8")
    assert "<script src=" not in text and "<link " not in text and 'src="http' not in text
    assert text.count("Plotly.newPlot") >= 6
    assert '<meta charset="utf-8">' in text
