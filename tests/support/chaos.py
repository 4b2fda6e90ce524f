"""Stopping and restarting real services for chaos tests.

Every stop is paired with the service's standard start command in a ``finally``, and the
restart waits until the port answers again: CI and the next session share these services.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterable, Iterator

from tests.support.services import START_COMMANDS, answers

STOP_COMMANDS = {
    "nats": "start-stop-daemon --stop --oknodo --retry 5 --exec /usr/sbin/nats-server",
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main stop -m fast",
    "redis": "redis-cli -p 6379 shutdown nosave",
    "rabbitmq": "rabbitmqctl stop",
}


def _run(command: str) -> None:
    subprocess.run(command, shell=True, check=False, capture_output=True, timeout=60)


def wait_until(service: str, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(service, timeout=0.5) == up:
            return
        time.sleep(0.1)
    raise AssertionError(f"{service} did not {'come up' if up else 'go down'} within {timeout}s")


def stop(service: str) -> None:
    _run(STOP_COMMANDS[service])
    wait_until(service, up=False)


def start(service: str) -> None:
    if not answers(service):
        _run(START_COMMANDS[service])
    wait_until(service, up=True, timeout=60)


@contextlib.contextmanager
def guaranteed_restart(service: str) -> Iterator[None]:
    """Whatever happens inside, ``service`` is running again when the block exits."""
    try:
        yield
    finally:
        start(service)


def reap(procs: Iterable[subprocess.Popen[str]]) -> None:
    """End a chaos test's child processes: kill those still running, wait for each (10 s at
    most) and close its stdout pipe, so no process or pipe outlives the test."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
