"""``tether status`` and ``tether dlq`` with ``database_pooler = "transaction"``."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.cli import app
from tether.outbox import add_event

pytestmark = pytest.mark.postgres


def tether(pooled_dsn: str, *args: str) -> Result:
    env = {"TETHER_DATABASE_URL": pooled_dsn, "TETHER_DATABASE_POOLER": "transaction"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


async def _seed(dsn: str, events: int, dead: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for n in range(events):
                await add_event(conn, "OrderPlaced", {"n": n}, aggregate_id=str(n))
        await conn.execute(
            "UPDATE tether_outbox SET state = 'dead', finished_at = now(), attempts = 3, "
            "last_error = 'refused' WHERE seq IN (SELECT seq FROM tether_outbox "
            "ORDER BY seq LIMIT $1)",
            dead,
        )
    finally:
        await conn.close()


def test_status_and_dead_letters(pooled_dsn: str, direct_dsn: str) -> None:
    asyncio.run(_seed(direct_dsn, events=12, dead=3))

    status = tether(pooled_dsn, "status", "--json", "--window", "0")
    assert status.exit_code == 0, status.output
    snapshot = json.loads(status.stdout)
    assert (snapshot["pending"], snapshot["dead"]) == (9, 3)

    listed = tether(pooled_dsn, "dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == 3

    replayed = tether(pooled_dsn, "dlq", "replay", "--yes")
    assert replayed.exit_code == 0, replayed.output
    after = json.loads(tether(pooled_dsn, "status", "--json", "--window", "0").stdout)
    assert (after["pending"], after["dead"]) == (12, 0)


def test_without_the_setting_the_error_says_what_to_set(pooled_dsn: str) -> None:
    result = CliRunner().invoke(
        app, ["status", "--window", "0"], env={"TETHER_DATABASE_URL": pooled_dsn}
    )
    assert result.exit_code == 1
    assert "unsupported startup parameter" in result.output
    assert "TETHER_DATABASE_POOLER=transaction" in result.output


async def _seed_capabilities(dsn: str) -> None:
    store = SqlAuthzStore.from_url(dsn)
    authz = Authz(store, Registry(["trade:approve"]))
    try:
        await authz.sync()
        await authz.add_user("alice")
        await authz.add_org("acme")
    finally:
        await store.close()


def test_caps(pooled_dsn: str, direct_dsn: str) -> None:
    asyncio.run(_seed_capabilities(direct_dsn))
    granted = tether(pooled_dsn, "caps", "grant", "alice", "trade:approve", "--org", "acme")
    assert granted.exit_code == 0, granted.output
    listed = tether(pooled_dsn, "caps", "list", "--user", "alice")
    assert listed.exit_code == 0 and "trade:approve" in listed.output, listed.output
    explained = tether(pooled_dsn, "caps", "explain", "alice", "trade:approve", "--org", "acme")
    assert explained.output.startswith("allowed: alice trade:approve in acme"), explained.output
