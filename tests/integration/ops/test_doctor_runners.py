"""tether doctor's runners check: runners beating are counted by kind, one that went silent
without stopping in the last hour is a warning naming it, older ones and stopped ones are not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tether.core.clock import FrozenClock
from tether.ops.doctor import postgres
from tether.ops.doctor.check import Status
from tether.ops.runners import PostgresRunnerRegistry


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def test_no_runner_is_ok(conn: asyncpg.Connection) -> None:
    result = await postgres.runners(conn)
    assert (result.status, result.detail) == (Status.OK, "beating: none")


async def test_a_runner_lost_in_the_last_hour_is_a_warning(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        clock = FrozenClock(datetime.now(UTC))
        registry = PostgresRunnerRegistry(pool, clock=clock)
        await registry.register("relay", "relay-a", 10.0, {})
        await registry.register("job-worker", "w-1", 10.0, {})
        stopped = await registry.register("job-worker", "w-2", 10.0, {})
        await registry.stop(stopped, {})
        clock.advance(timedelta(minutes=-10))
        await registry.register("webhook-dispatcher", "d-killed", 10.0, {})
        clock.advance(timedelta(hours=-2))
        await registry.register("webhook-dispatcher", "d-long-gone", 10.0, {})
    finally:
        await pool.close()
    result = await postgres.runners(conn)
    assert result.status is Status.WARN
    assert result.detail.startswith("beating: 1 job-worker, 1 relay; lost in the last hour: ")
    assert "webhook-dispatcher d-killed on " in result.detail
    assert "d-long-gone" not in result.detail
    assert "logs" in result.fix
