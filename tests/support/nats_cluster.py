"""A throwaway three-node NATS JetStream cluster on loopback, for chaos tests.

Each node is the installed ``nats-server`` with its own client, route and monitoring port (free
ports picked at start) and its own storage directory in a temporary directory; the nodes are
named ``n1``, ``n2``, ... and route to each other. The shared NATS on port 4222 is never
touched. :func:`running_cluster` stops every node and removes the temporary directory on the
way out, also when the test failed or the cluster never formed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NATS_SERVER = "/usr/sbin/nats-server"


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (all held at once, so no
    two of them are the same)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


@dataclass
class Node:
    name: str
    client_port: int
    route_port: int
    monitor_port: int
    store_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def monitor(self, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """The node's monitoring endpoint ``path`` as JSON, or None if it does not answer OK."""
        address = f"http://127.0.0.1:{self.monitor_port}{path}"
        try:
            with urllib.request.urlopen(address, timeout=timeout) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class NatsCluster:
    nodes: list[Node]
    name: str
    root: Path
    killed: list[str] = field(default_factory=list)

    @property
    def servers(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in cluster {self.name}: {[n.name for n in self.nodes]}")

    def start(self, node: Node) -> None:
        routes = ",".join(
            f"nats://127.0.0.1:{other.route_port}" for other in self.nodes if other is not node
        )
        command = [
            NATS_SERVER,
            "-a", "127.0.0.1",
            "-p", str(node.client_port),
            "-n", node.name,
            "-js",
            "-sd", str(node.store_dir),
            "-m", str(node.monitor_port),
            "--cluster_name", self.name,
            "--cluster", f"nats://127.0.0.1:{node.route_port}",
            "--routes", routes,
            "-l", str(node.log_file),
        ]  # fmt: skip
        node.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self, name: str) -> Node:
        """SIGKILL one node (no shutdown: its peers see it vanish) and wait until it is gone."""
        node = self.node(name)
        if node.process is not None and node.running:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(timeout=10)
        self.killed.append(name)
        return node

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start a killed node again on its ports and storage; wait until it is healthy and
        knows the meta leader."""
        node = self.node(name)
        if not node.running:
            self.start(node)
        self.wait_ready(timeout, nodes=[node])

    def wait_ready(self, timeout: float, nodes: list[Node] | None = None) -> str:
        """Until every running node (or those given) reports healthy and names the same
        running node as JetStream meta leader; returns that leader's name."""
        watched = nodes or [n for n in self.nodes if n.running]
        deadline = time.monotonic() + timeout
        seen: dict[str, object] = {}
        while time.monotonic() < deadline:
            for node in watched:
                if not node.running:
                    raise AssertionError(
                        f"nats-server {node.name} exited with {node.process and node.process.poll()}"
                        f"; its log ends:\n{node.log_tail()}"
                    )
            health = {n.name: n.monitor("/healthz") for n in watched}
            jsz = {n.name: n.monitor("/jsz") for n in watched}
            leaders = {
                name: ((info or {}).get("meta_cluster") or {}).get("leader")
                for name, info in jsz.items()
            }
            seen = {"healthz": health, "meta leaders": leaders}
            healthy = all((h or {}).get("status") == "ok" for h in health.values())
            names = set(leaders.values())
            # A node keeps naming a killed meta leader until it notices: only a running one counts.
            alive = {n.name for n in self.nodes if n.running}
            if healthy and len(names) == 1 and names <= alive:
                return str(names.pop())
            time.sleep(0.2)
        logs = "\n".join(f"--- {n.name}\n{n.log_tail()}" for n in watched)
        raise AssertionError(
            f"NATS cluster {self.name} not ready within {timeout}s (last seen: {seen})\n{logs}"
        )

    def stop_all(self) -> None:
        """SIGTERM every node, SIGKILL whatever has not exited after 10 s."""
        for node in self.nodes:
            if node.process is not None and node.running:
                node.process.terminate()
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)


@contextlib.contextmanager
def running_cluster(size: int = 3, ready_timeout: float = 60.0) -> Iterator[NatsCluster]:
    """Start ``size`` routed JetStream nodes, yield once they agree on a meta leader, and stop
    them and delete their storage however the block ends."""
    root = Path(tempfile.mkdtemp(prefix="tether-nats-cluster-"))
    ports = free_ports(3 * size)
    nodes = [
        Node(
            name=f"n{i + 1}",
            client_port=ports[3 * i],
            route_port=ports[3 * i + 1],
            monitor_port=ports[3 * i + 2],
            store_dir=root / f"n{i + 1}",
            log_file=root / f"n{i + 1}.log",
        )
        for i in range(size)
    ]
    cluster = NatsCluster(nodes, f"tether-{uuid.uuid4().hex[:8]}", root)
    try:
        for node in nodes:
            node.store_dir.mkdir()
            cluster.start(node)
        cluster.wait_ready(ready_timeout)
        yield cluster
    finally:
        try:
            cluster.stop_all()
        finally:
            shutil.rmtree(root, ignore_errors=True)


async def add_stream(js: Any, config: Any, cluster: NatsCluster, within: float = 30.0) -> Any:
    """``js.add_stream(config)``, asked again while a just-formed cluster does not answer.

    A cluster that agrees on a meta leader can still leave the first JetStream API request
    unanswered for a while on a loaded machine (its reply interest is still crossing the
    routes, or the leader is catching up): CI saw one time out after 10 s. Creating the same
    stream again is idempotent, so the request is repeated until ``within`` seconds pass; then
    the last error is raised with the nodes' logs.
    """
    import nats.errors

    deadline = time.monotonic() + within
    while True:
        try:
            return await js.add_stream(config)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name}\n{n.log_tail(30)}" for n in cluster.nodes)
                raise AssertionError(
                    f"JetStream did not create stream {config.name} within {within}s "
                    f"({exc!r}); node logs:\n{logs}"
                ) from exc
