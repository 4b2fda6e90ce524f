"""``tether relay`` as a real process: metrics endpoint, SIGTERM finishes the batch and exits 0."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke
from tether.outbox import add_event_sync

TETHER = [sys.executable, "-m", "tether.cli"]


@contextlib.contextmanager
def spawn(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A child process whose pipes are closed and which is killed if the test fails early."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_until(stream, needle: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Lines from ``stream`` until one contains ``needle``; fails after ``timeout`` seconds."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not seen within {timeout}s; got:\n{''.join(seen)}")


def scrape_until(port: int, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        if needle in text:
            return
        time.sleep(0.05)  # between scrapes of a condition with a deadline
    raise AssertionError(f"{needle!r} not in metrics after {timeout}s:\n{text}")


def test_relay_serves_metrics_and_stops_on_sigterm(cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/relay.db"
    assert invoke(cli, "migrate", "--db", url).exit_code == 0
    with contextlib.closing(sqlite3.connect(tmp_path / "relay.db")) as conn, conn:
        for i in range(3):
            add_event_sync(
                conn, "OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=str(i)
            )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    command = [*TETHER, "relay", "--db", url, "--log-sink", "--metrics-port", str(port)]
    with spawn(command, env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        read_until(proc.stderr, "relay started", timeout=20)
        events = [proc.stdout.readline() for _ in range(3)]
        assert all('"type":"OrderPlaced"' in line for line in events)
        # The batch is counted once settled, just after the lines were written: poll briefly.
        scrape_until(port, 'tether_relay_events_total{outcome="published"} 3.0', timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        rest = proc.stderr.read()
        assert "SIGTERM received: finishing the current batch" in rest
        assert "relay stopped: 3 published" in rest
        assert "Traceback" not in rest


def test_relay_waits_for_its_database_until_stopped() -> None:
    """A relay started before its database keeps retrying (logged), and still stops cleanly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/x"
    with spawn([*TETHER, "relay", "--db", url, "--log-sink"], env) as proc:
        assert proc.stderr is not None
        read_until(proc.stderr, "database not reachable", timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "relay stopped before it could connect" in proc.stderr.read()


def test_drain_fails_fast_when_the_database_is_down(cli: CliRunner) -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/x"
    result = invoke(cli, "relay", "--db", url, "--log-sink", "--drain")
    assert result.exit_code == 1
    assert "cannot reach the database" in result.stderr and "Traceback" not in result.output


def test_metrics_port_in_use(cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/relay.db"
    assert invoke(cli, "migrate", "--db", url).exit_code == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke(
            cli, "relay", "--db", url, "--log-sink", "--drain", "--metrics-port", str(port)
        )
    assert result.exit_code == 1
    assert f"cannot serve metrics on port {port}" in result.stderr
