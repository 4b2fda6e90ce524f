"""A relay started on an empty, analyzed table keeps claiming at most one batch once it fills.

A generic plan built for the empty table used to re-run the SKIP LOCKED pick per row, returning
thousands of rows for LIMIT 500 and falling seconds behind; the MATERIALIZED pick and
force_custom_plan sessions prevent it.
"""

from __future__ import annotations

import asyncio

import asyncpg

from tests.support.scripted_sink import ScriptedSink
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore


async def test_claims_stay_bounded_when_an_empty_table_fills(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("ANALYZE tether_outbox")
    store = await PostgresOutboxStore.connect(pg_dsn)
    sink = ScriptedSink()
    relay = Relay(store, [sink], config=RelayConfig(batch_size=100))
    sizes: list[int] = []
    try:
        for _ in range(20):  # warm the relay's prepared statements on the empty table
            sizes.append((await relay.run_once()).claimed)
        await conn.execute(
            """INSERT INTO tether_outbox (id, topic, type, payload, partition_key)
               SELECT gen_random_uuid(), 't', 'T', '{}', 'k' || (g % 3000)
               FROM generate_series(1, 20000) g"""
        )
        async with asyncio.timeout(60):
            while len(sink.received) < 20000:
                sizes.append((await relay.run_once()).claimed)
    finally:
        await store.close()
        await conn.close()
    assert max(sizes) <= 100
    assert len({e.id for e in sink.received}) == 20000
