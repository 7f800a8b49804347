"""``--executor ray`` on a real two-node Ray cluster on this machine, loopback only.

``vlmhb.executors.ray_local`` starts a head and a second node (two ``ray start --block``
process trees, each declaring two GPUs: Ray slots them and sets ``CUDA_VISIBLE_DEVICES`` for
real, though no GPU exists here, a test double for the hardware). Every node advertises
127.0.0.1 and joins through it. The driver is the real CLI in a subprocess; the runs are real
echo and Tesseract workers. The second node is SIGKILLed mid-run, as a preempted pod is.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import psutil
import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb.executors.ray import LOOPBACK_SWITCH, RAY_LOG, read_events
from vlmhb.executors.ray_local import LoopbackCluster, RayNode
from vlmhb.run.folder import iter_jsonl

pytestmark = pytest.mark.slow
# This process waits for the nodes as a loopback driver: Ray must not rewrite 127.0.0.1.
os.environ.setdefault(LOOPBACK_SWITCH, "0")
pytest.importorskip("ray")  # CI installs it with .[dev]; skipped only where the extra is absent
N_DOCS, FIELDS = 5, ("surname", "name")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    """A head and one worker node, 2 fake GPUs and 2 CPUs each; stopped, every process gone."""
    # A short folder: Ray's unix socket paths must stay under 107 characters.
    with tempfile.TemporaryDirectory(prefix="vr-", dir="/tmp") as folder:
        env = dict(os.environ, VLMHB_HOME=os.environ["VLMHB_HOME"])
        ray_cluster = LoopbackCluster(Path(folder), env=env)
        seen: set[int] = set()
        try:
            ray_cluster.start_head(gpus=2, cpus=2)
            ray_cluster.wait_for(gpus=2)  # one at a time: a busy machine starts nodes slowly
            ray_cluster.add_node(gpus=2, cpus=2)
            ray_cluster.wait_for(gpus=4)
            assert advertised(ray_cluster) == {"127.0.0.1"}
            yield ray_cluster
        finally:
            for node in ray_cluster.nodes:
                seen.update(node.pids())
            remote = [
                c.raddr
                for c in psutil.net_connections("inet")
                if c.pid in seen and c.raddr and not loopback(c.raddr.ip)
            ]
            ray_cluster.stop()
        assert remote == [], f"Ray talked beyond the loopback: {remote}"
        left = [p for p in seen if psutil.pid_exists(p) and not _zombie(p)]
        assert left == [], f"Ray processes left behind: {left}"


def advertised(ray_cluster: LoopbackCluster) -> set[str]:
    """The addresses the cluster's nodes advertise, as the GCS lists them."""
    import ray

    ray.init(address=ray_cluster.address, logging_level="ERROR", log_to_driver=False)
    try:
        return {node["NodeManagerAddress"] for node in ray.nodes()}
    finally:
        ray.shutdown()


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class WorkerSpy:
    """Every vlmhb worker writing under ``runs``: its run, node and CUDA_VISIBLE_DEVICES."""

    def __init__(self, runs: Path, nodes: list[RayNode]) -> None:
        self.runs, self.nodes = runs, nodes
        self.seen: dict[str, set[str | None]] = {}
        self.clashes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def workers(self) -> list[tuple[str, str, str | None]]:
        """(run id, node name, devices) of each live worker process."""
        found = []
        trees = {node.name: set(node.pids()) for node in self.nodes}
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if "vlmhb.worker" not in " ".join(proc.info["cmdline"] or []):
                    continue
                log = Path(os.readlink(f"/proc/{proc.pid}/fd/2"))
                if self.runs not in log.parents:
                    continue
                environ = proc.environ()
                if environ.get("PYTHONIOENCODING") != "utf-8":
                    continue  # forked, not yet exec'd: /proc shows its parent's environment
                devices = environ.get("CUDA_VISIBLE_DEVICES")
            except (psutil.Error, OSError):
                continue
            node = next((name for name, pids in trees.items() if proc.pid in pids), "?")
            found.append((log.parent.name, node, devices))
        return found

    def _loop(self) -> None:
        while not self._stop.is_set():
            held: dict[tuple[str, str], str] = {}
            for run_id, node, devices in self.workers():
                self.seen.setdefault(run_id, set()).add(devices)
                for device in (devices or "").split(","):
                    other = held.setdefault((node, device), run_id) if device else run_id
                    if other != run_id:
                        self.clashes.append(f"{run_id} and {other} on {node} GPU {device}")
            time.sleep(0.05)

    def __enter__(self) -> WorkerSpy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def echo_row(name: str, delay: float) -> dict:
    return {
        "dataset": "ds",
        "backend": "echo",
        "model": name,
        "name": name,
        "stages": "infer",
        "gpus": 1,
        "load": {"delay_s": delay},
        # One request at a time: the answers come one by one, so a run is seen mid-way
        # (the echo engine answers a whole batch at its end).
        "batch_size": 1,
    }


def driver(
    plan: Path, runs: Path, cluster: LoopbackCluster, *extra: str, cwd: Path = REPO
) -> subprocess.Popen:
    """The real CLI as the Ray driver, joined through 127.0.0.1."""
    argv = vlmhb_cmd(
        "run", str(plan), "--runs-dir", str(runs), "--executor", "ray", "--ray-address",
        cluster.address, *extra,
    )  # fmt: skip
    return subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def answers(run_dir: Path) -> list[dict]:
    path = run_dir / "answers.jsonl"
    return list(iter_jsonl(path)) if path.exists() else []


def test_lost_node_retried_and_resumed(
    cluster: LoopbackCluster, tmp_path: Path, write_plan
) -> None:
    make_dataset(tmp_path / "ds", n_docs=N_DOCS, fields=FIELDS)
    n_samples = N_DOCS * len(FIELDS)
    rows = [echo_row(f"echo{i}", delay=0.6) for i in range(5)]
    rows.append(
        {
            "dataset": "ds",
            "backend": "tesseract",
            "model": "tesseract-rus",
            "name": "ocr",
            "stages": "infer,eval",
            "gpus": 0,
        }
    )
    rows.append({**echo_row("broken", delay=0.0), "load": {"fail_load": "no weights here"}})
    plan = write_plan(rows)
    runs = tmp_path / "runs"
    second = cluster.nodes[1]
    second_id = cluster.node_ids()[second.name]
    junit = tmp_path / "junit.xml"
    with WorkerSpy(runs, cluster.nodes) as spy:
        # --no-cache reaches the nodes: every answer is made by a worker, none is reused
        proc = driver(
            plan, runs, cluster, "--no-cache", "--junit", str(junit),
            "--fail-under", "model=tesseract-rus:ned=1",
        )  # fmt: skip

        def busy_on_second() -> str | None:
            """A run that started on the second node and has answered some samples."""
            for event in read_events(runs) if (runs / RAY_LOG).exists() else []:
                if event["event"] == "start" and event["node_id"] == second_id:
                    run_dir = runs / event["run_id"]
                    if 1 <= len(answers(run_dir)) < n_samples:
                        return event["run_id"]
            return None

        try:
            wait_until(lambda: busy_on_second() is not None, 180, "a run answering on node 2")
        except AssertionError:
            proc.kill()
            out, err = proc.communicate()
            counts = {p.parent.name: len(answers(p.parent)) for p in runs.glob("*/run.json")}
            raise AssertionError(
                f"events {read_events(runs) if runs.exists() else []}\nanswers {counts}\n"
                f"node ids {cluster.node_ids()}\ndriver: {err[-3000:]}"
            ) from None
        victim = busy_on_second()
        before = len(answers(runs / victim))
        second.kill()  # the pod is gone: raylet, agents, the task's worker, all at once
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err  # one run failed, as the local executor says
    assert spy.clashes == []

    events = read_events(runs)
    starts = [e for e in events if e["event"] == "start"]
    ends = {e["run_id"]: e for e in events if e["event"] == "end"}
    broken = next(e for e in ends.values() if e["label"] == "broken")
    assert broken["status"] == "failed" and "no weights here" in broken["error"]
    del ends[broken["run_id"]]
    assert len(ends) == 6 and all(e["status"] == "done" for e in ends.values()), ends
    victim_starts = [e for e in starts if e["run_id"] == victim]
    assert len(victim_starts) == 2  # Ray retried the lost task once, on the node left
    assert victim_starts[0]["node_id"] != victim_starts[1]["node_id"]
    record = json.loads((runs / victim / "run.json").read_text())
    assert before >= 1 and record["counts"]["answered_now"] <= n_samples - before  # resumed
    for run_id in ends:
        got = [a["id"] for a in answers(runs / run_id)]
        assert len(got) == n_samples and len(set(got)) == n_samples  # 0 lost, 0 duplicated
        assert not [a for a in answers(runs / run_id) if a.get("cached")]
        run_starts = [e for e in starts if e["run_id"] == run_id]
        wanted = {e["cuda_visible_devices"] for e in run_starts}
        gpu_run = run_id != next(e["run_id"] for e in starts if e["label"] == "ocr")
        if gpu_run:  # one of the node's two GPUs, and the worker saw exactly that one
            assert wanted <= {"0", "1"}
            assert spy.seen.get(run_id, set()) <= wanted and spy.seen.get(run_id)
    assert "gate pass" in out and "no weights here" in junit.read_text()
    suite = ElementTree.parse(junit).getroot().find("testsuite[@name='vlmhb.runs']")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("7", "1")

    # The whole plan again: only the failed run is submitted, the rest reads back as done.
    again = driver(plan, runs, cluster)
    out, err = again.communicate(timeout=180)
    assert again.returncode == 1, out + err
    assert err.count("already done") == 6 and "submitted 1 run(s)" in err


def test_sigterm_cancels_every_task(cluster: LoopbackCluster, tmp_path: Path, write_plan) -> None:
    if len([n for n in cluster.nodes if not n.killed]) < 2:  # another node joins
        cluster.add_node(gpus=2, cpus=2)
        cluster.wait_for(gpus=4)
    make_dataset(tmp_path / "ds", n_docs=N_DOCS, fields=FIELDS)
    plan = write_plan([echo_row(f"slow{i}", delay=2.0) for i in range(4)])
    runs = tmp_path / "runs"
    spy = WorkerSpy(runs, cluster.nodes)
    proc = driver(plan, Path("runs"), cluster, cwd=tmp_path)  # relative to the driver's folder
    wait_until(lambda: len(spy.workers()) == 4, 180, "four workers answering")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    wait_until(lambda: not spy.workers(), 30, "every worker on every node to stop")
    for run_dir in (p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")):
        assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
