"""A revoke committed by one process is honoured by another within one second."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from tether.authz import Authz, Registry, SqlAuthzStore

ROOT = Path(__file__).resolve().parents[3]
REGISTRY = Registry(["trade:approve", "trade:view"])


async def readline(proc: asyncio.subprocess.Process, timeout: float = 15) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    return line.decode().strip()


@pytest.mark.parametrize("mode", ["listen", "poll"])
async def test_revoke_is_visible_in_another_process_within_one_second(
    pg_dsn: str, mode: str
) -> None:
    store = SqlAuthzStore.from_url(pg_dsn)
    authz = Authz(store, REGISTRY)
    await authz.sync()
    await authz.add_user("alice")
    await authz.add_org("acme")
    await authz.grant("alice", "trade:approve", "acme")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.authz.peer",
        pg_dsn,
        mode,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        ready = await readline(proc)
        assert ready == f"ready listening={mode == 'listen'}"
        await authz.revoke("alice", "trade:approve", "acme")
        committed = time.monotonic()
        seen = (await readline(proc, timeout=5)).split()
        assert seen[0] == "denied", seen
        lag = float(seen[1]) - committed
        print(f"{mode}: revoke seen by the other process after {lag * 1000:.1f} ms")
        assert lag < 1.0, f"the other process saw the revoke after {lag:.3f}s"
        assert int(seen[2].removeprefix("hits=")) > 0  # it was deciding from its cache
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await store.close()
