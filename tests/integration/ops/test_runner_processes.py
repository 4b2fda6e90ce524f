"""Real ``tether relay``, ``webhooks run``, ``realtime`` and ``worker`` processes in the runner
registry: they register at start, beat while idle, are marked stopped by SIGTERM, and once
SIGKILLed turn late, then lost. Beats every 0.3 s keep each test to a few seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from tether.ops.runners import PostgresRunnerRegistry, RunnerInfo

BEAT = 0.3


@pytest.fixture
async def registry(pg_dsn: str) -> AsyncIterator[PostgresRunnerRegistry]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        yield PostgresRunnerRegistry(pool)
    finally:
        await pool.close()


def spawn(dsn: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["TETHER_DATABASE_URL"] = dsn
    env["TETHER_REALTIME_JWT_SECRET"] = "s" * 32
    command = [sys.executable, "-m", "tether.cli", *args, "--heartbeat", str(BEAT)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


async def until(
    registry: PostgresRunnerRegistry,
    proc: subprocess.Popen[str],
    check: Callable[[RunnerInfo, datetime], bool],
    what: str,
    timeout: float = 20.0,
) -> RunnerInfo:
    deadline = time.monotonic() + timeout
    seen: list[RunnerInfo] = []
    while time.monotonic() < deadline:
        seen = await registry.runners()
        now = datetime.now(UTC)
        for info in seen:
            if info.pid == proc.pid and check(info, now):
                return info
        await asyncio.sleep(0.1)
    stderr = ""
    if proc.poll() is not None and proc.stderr is not None:
        stderr = proc.stderr.read()
    raise AssertionError(f"no runner {what} within {timeout} s: {seen} {stderr}")


def reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


COMMANDS = {
    "relay": ("relay", "--log-sink"),
    "webhook-dispatcher": ("webhooks", "run"),
    "realtime-gateway": ("realtime", "--port", "{port}"),
}


@pytest.mark.parametrize("kind", list(COMMANDS))
async def test_an_idle_runner_beats_and_sigterm_marks_it_stopped(
    pg_dsn: str, registry: PostgresRunnerRegistry, kind: str
) -> None:
    args = [a.format(port=free_port()) for a in COMMANDS[kind]]
    proc = spawn(pg_dsn, *args, "--name", f"{kind}-under-test")
    try:
        info = await until(
            registry,
            proc,
            # Beaten since it registered, with nothing to do.
            lambda i, now: i.heartbeat_at > i.started_at and i.status(now) == "alive",
            "beating",
        )
        assert (info.kind, info.name) == (kind, f"{kind}-under-test")
        assert all(value == 0 for value in info.stats.values()), info.stats
        assert info.stats
        proc.send_signal(signal.SIGTERM)
        # uvicorn (tether realtime) shuts down cleanly, then re-raises the signal it caught.
        clean = (0, -signal.SIGTERM) if kind == "realtime-gateway" else (0,)
        assert await asyncio.to_thread(proc.wait, 20) in clean
        [info] = [i for i in await registry.runners() if i.pid == proc.pid]
        assert info.status(datetime.now(UTC)) == "stopped"
    finally:
        reap(proc)


async def test_a_killed_worker_turns_late_then_lost(
    pg_dsn: str, registry: PostgresRunnerRegistry
) -> None:
    app = "tests.integration.jobs.sample_app"
    proc = spawn(pg_dsn, "worker", "--app", app, "--name", "worker-under-test")
    try:
        info = await until(registry, proc, lambda i, now: i.status(now) == "alive", "alive")
        assert (info.kind, info.name) == ("job-worker", "worker-under-test")
        assert info.stats == {
            "done_total": 0,
            "failed_total": 0,
            "dead_total": 0,
            "rescued_total": 0,
            "in_flight": 0,
        }
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        await until(registry, proc, lambda i, now: i.status(now) == "late", "late", 5)
        info = await until(registry, proc, lambda i, now: i.status(now) == "lost", "lost", 5)
        assert info.stopped_at is None
    finally:
        reap(proc)


def test_a_bad_heartbeat_is_refused(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tether.cli", "relay", "--log-sink", "--heartbeat", "-1"]
    command += ["--db", f"sqlite:///{tmp_path / 'x.db'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "--heartbeat must be 0 (off) or a positive number of seconds" in result.stderr
