"""The inbox on PostgreSQL beyond the contract: concurrent repeats wait, retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from tether.core.errors import ConfigError
from tether.core.ids import new_id
from tether.outbox.inbox import Inbox, sweep


async def test_concurrent_repeats_run_the_handler_once(pg_dsn: str) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=10, max_size=10)
    eid, inbox, runs = new_id(), Inbox("billing"), []

    async def deliver() -> None:
        async with pool.acquire() as conn, conn.transaction():

            async def work() -> None:
                runs.append(1)
                await asyncio.sleep(0.01)  # hold the transaction open so repeats overlap

            await inbox.handle(conn, eid, work)

    try:
        await asyncio.gather(*(deliver() for _ in range(10)))
    finally:
        await pool.close()
    assert runs == [1]


async def test_sweep_and_bad_names(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with conn.transaction():
            await Inbox("c").first_time(conn, new_id())
            await sweep(conn, timedelta(0))
        assert await conn.fetchval("SELECT count(*) FROM tether_inbox") == 0
    finally:
        await conn.close()
    with pytest.raises(ConfigError, match="consumer name"):
        Inbox("bad name; drop table")
