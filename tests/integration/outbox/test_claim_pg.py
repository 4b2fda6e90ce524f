"""The claim on PostgreSQL beside another relay: a key whose head another transaction holds is
left alone whole (its later rows are never taken out of order), and the rest still flows."""

from __future__ import annotations

import asyncpg

from tether.outbox import add_event
from tether.outbox.store_pg import PostgresOutboxStore


async def _produce(conn: asyncpg.Connection, key: str, n: int) -> None:
    async with conn.transaction():
        for i in range(n):
            await add_event(conn, "Step", {"i": i}, aggregate_type="order", aggregate_id=key)


async def test_a_key_whose_head_another_relay_holds_is_left_whole(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    store = await PostgresOutboxStore.connect(pg_dsn)
    try:
        await _produce(conn, "A", 40)
        await _produce(conn, "B", 3)
        async with conn.transaction():
            # Another relay holds key A's head only (its batch took no more of A).
            await conn.fetch(
                "SELECT seq FROM tether_outbox WHERE aggregate_id = 'A' "
                "ORDER BY seq LIMIT 1 FOR UPDATE"
            )
            for limit in (4, 10, 100):  # within the window, past it, and the skip scan
                async with store.claim(limit, run=1) as batch:
                    got = [c.event.aggregate_id for c in batch.events]
                assert got == ["B", "B", "B"], limit
    finally:
        await store.close()
        await conn.close()
