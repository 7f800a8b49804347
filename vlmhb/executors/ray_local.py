"""A private Ray cluster on this machine, on the loopback interface only: tests, benchmarks, demos.

Each node is a ``ray start --block`` process in its own session, advertising
``--node-ip-address=127.0.0.1`` and joined through ``127.0.0.1``; GPUs are declared
(``--num-gpus``) so Ray slots them and sets ``CUDA_VISIBLE_DEVICES`` even where none exist.
Ports are picked free on 127.0.0.1 so several clusters can share a machine, and the session
files go to the cluster's own temp folder. Nodes are stopped or killed by the pids of their
own process trees, never with ``ray stop`` (which stops every Ray on the machine).

Ray rewrites a loopback ``--node-ip-address`` into the machine's address; ``python -m
vlmhb.executors.ray_local start ...`` runs Ray's own CLI with that rewrite turned off.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
START_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _node_ports() -> list[str]:
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]


@dataclass
class RayNode:
    """One ``ray start --block`` process and what it started."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] = field(init=False)
    launches: int = 0
    joined: bool = False
    killed: bool = False

    def launch(self) -> None:
        """Start (or start again) the node's ``ray start --block`` in its own session."""
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                self.argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.launches += 1

    def pids(self) -> list[int]:
        """The node's process and every process below it (raylet, agents, task workers)."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            return [root.pid, *(child.pid for child in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """Lose the node at once, as a preempted pod does: SIGKILL to its whole tree."""
        pids = self.pids()
        self.killed = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        _wait_gone(pids, 30)

    def stop(self, timeout_s: float = 60) -> None:
        """Stop the node gently (SIGTERM: Ray drains it), then kill what is left."""
        pids = self.pids()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        for pid in _alive(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(pids, 30)


def _alive(pids: list[int]) -> list[int]:
    import psutil

    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def _wait_gone(pids: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)


@dataclass
class LoopbackCluster:
    """A Ray head and worker nodes on 127.0.0.1, their files under ``folder``."""

    folder: Path
    env: dict[str, str] | None = None  # the nodes' environment (VLMHB_HOME, ...)
    port: int = field(default_factory=free_port)
    nodes: list[RayNode] = field(default_factory=list)

    @property
    def address(self) -> str:
        """What drivers and nodes join: ``127.0.0.1:<gcs port>``."""
        return f"{LOOPBACK}:{self.port}"

    def start_head(self, *, gpus: int, cpus: int) -> RayNode:
        """The head node (GCS and a raylet with ``gpus`` GPUs)."""
        extra = [
            "--head",
            f"--port={self.port}",
            "--include-dashboard=false",
            f"--temp-dir={self.folder / 'ray'}",
        ]
        return self._start("head", extra, gpus, cpus)

    def add_node(self, *, gpus: int, cpus: int) -> RayNode:
        """A worker node joined to the head through 127.0.0.1."""
        return self._start(f"node{len(self.nodes)}", [f"--address={self.address}"], gpus, cpus)

    def _start(self, name: str, extra: list[str], gpus: int, cpus: int) -> RayNode:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / f"{name}.log"
        argv = [
            sys.executable,
            "-m",
            "vlmhb.executors.ray_local",
            "start",
            *extra,
            f"--node-ip-address={LOOPBACK}",
            *_node_ports(),
            f"--num-cpus={cpus}",
            f"--num-gpus={gpus}",
            "--object-store-memory=80000000",
            "--disable-usage-stats",
            "--include-log-monitor=false",
            "--block",
        ]
        env = dict(self.env if self.env is not None else os.environ)
        env.pop("RAY_ADDRESS", None)
        env.pop(LOOPBACK_SWITCH, None)  # a node joining others refuses it; the shim does its job
        node = RayNode(name, argv, env, log)
        node.launch()
        self.nodes.append(node)
        return node

    def wait_for(self, *, gpus: float, timeout_s: float = 180) -> None:
        """Block until the alive nodes offer ``gpus`` GPUs in all (through a loopback driver)."""
        from vlmhb.executors.ray import import_ray

        ray = import_ray(self.address)
        connected_here = not ray.is_initialized()
        try:
            self._poll(ray, gpus, timeout_s)
        finally:
            if connected_here:
                ray.shutdown()

    def _poll(self, ray: Any, gpus: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for node in self.nodes:
                if node.killed or node.process.poll() is None:
                    continue
                if not node.joined and node.launches < START_ATTEMPTS:
                    # Ray's raylet gives its agents fixed seconds to come up; on a busy
                    # machine they may miss it once (imports are warm the second time).
                    node.launch()
                    continue
                tail = node.log.read_text("utf-8", "replace")[-2000:]
                raise RuntimeError(f"ray node {node.name} exited:\n{tail}")
            try:
                if not ray.is_initialized():
                    ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
                if ray.cluster_resources().get("GPU", 0) >= gpus:
                    for node in self.nodes:
                        node.joined = True
                    return
            except (ConnectionError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray cluster at {self.address} has not {gpus} GPUs")
            time.sleep(0.5)

    def node_ids(self) -> dict[str, str]:
        """Ray's node id of each live node, by name (matched on its node-manager port)."""
        from vlmhb.executors.ray import import_ray

        ray = import_ray(self.address)
        connected_here = not ray.is_initialized()
        if connected_here:
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        try:
            alive = [node for node in ray.nodes() if node["Alive"]]
            by_port = {str(node["NodeManagerPort"]): node["NodeID"] for node in alive}
        finally:
            if connected_here:
                ray.shutdown()
        ids = {}
        flag = "--node-manager-port="
        for node in self.nodes:
            port = next(arg.removeprefix(flag) for arg in node.argv if arg.startswith(flag))
            if port in by_port:
                ids[node.name] = by_port[port]
        return ids

    def stop(self) -> None:
        """Stop every node, worker nodes first; no process of theirs is left."""
        for node in reversed(self.nodes):
            node.stop()


def main() -> None:
    """``ray`` CLI with Ray's rewrite of a loopback node address turned off."""
    from ray._private import services

    services.resolve_ip_for_localhost = lambda host: host
    from ray.scripts.scripts import main as ray_main

    sys.exit(ray_main())


if __name__ == "__main__":
    main()
