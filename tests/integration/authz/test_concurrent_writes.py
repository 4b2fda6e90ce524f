"""Writes from many processes at once: every one succeeds and the end state is the expected one.

Before grants were upserts, a grant deleted the old row and inserted the new one, so two
processes granting the same capability at once collided on the unique key, and two instances
defining the same role at start-up collided on the role's capabilities.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from tests.integration.authz.writer import CAPABILITIES, ROLE
from tether.authz import Authz, Registry, SqlAuthzStore

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 8


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()


async def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_eight_instances_start_grant_and_revoke_at_once(pg_dsn: str) -> None:
    # No instance has started before: all eight sync, register and define the role together.
    procs = [
        await _spawn("-m", "tests.integration.authz.writer", pg_dsn, "5") for _ in range(PROCESSES)
    ]
    started = [await _line(p) for p in procs]
    assert started == ["ready"] * PROCESSES, started
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    finished = [await _line(p) for p in procs]
    codes = [await asyncio.wait_for(p.wait(), 60) for p in procs]
    assert finished == ["done"] * PROCESSES, finished
    assert codes == [0] * PROCESSES

    direct = await _rows(
        pg_dsn,
        "SELECT capability, org_id FROM tether_authz_user_capabilities "
        "WHERE user_id = 'alice' ORDER BY capability, org_id NULLS LAST",
    )
    assert direct == [(c, o) for c in sorted(CAPABILITIES) for o in ("acme", None)]
    role = await _rows(
        pg_dsn, f"SELECT capability FROM tether_authz_role_capabilities WHERE role = '{ROLE}'"
    )
    assert sorted(r[0] for r in role) == sorted(CAPABILITIES)
    assigned = await _rows(pg_dsn, "SELECT user_id, org_id, role FROM tether_authz_user_roles")
    assert assigned == [("alice", "acme", ROLE)]


async def _seed(dsn: str) -> None:
    authz = Authz(SqlAuthzStore.from_url(dsn), Registry(CAPABILITIES))
    await authz.sync()
    await authz.add_user("alice")
    await authz.add_org("acme")
    await authz.store.close()


async def test_parallel_cli_grants_of_the_same_grant_all_succeed(pg_dsn: str) -> None:
    await _seed(pg_dsn)
    grant = ("-m", "tether.cli", "caps", "grant", "alice", "trade:view", "--org", "acme")
    procs = [await _spawn(*grant, "--dsn", pg_dsn) for _ in range(6)]
    results = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * 6, [err.decode() for _, err in results]
    rows = await _rows(pg_dsn, "SELECT capability, org_id FROM tether_authz_user_capabilities")
    assert rows == [("trade:view", "acme")]
