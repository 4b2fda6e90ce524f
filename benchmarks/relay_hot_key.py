"""Relay drain of a few hot aggregates: per-key runs (the default, 16) against one event per key per
batch, on PostgreSQL with an in-memory sink, so the figure isolates the claim path.

    .venv/bin/python benchmarks/relay_hot_key.py [--events 5000] [--keys 10]

Ends with one JSON line: {"bench": "relay_hot_key", "tether_per_s": ..., "peer": "per_key_run=1"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import asyncpg
from _common import temp_database

from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.memory import MemorySink
from tether.store.postgres.ddl import full_schema_sql


async def drain(dsn: str, events: int, keys: int, run: int) -> float:
    conn = await asyncpg.connect(dsn)
    await conn.execute("DELETE FROM tether_outbox")
    await conn.execute(
        """INSERT INTO tether_outbox (id, topic, type, payload, partition_key)
           SELECT gen_random_uuid(), 'orders', 'Step', '{"x": 1}', 'order:' || (g % $2)
           FROM generate_series(1, $1) g""",
        events,
        keys,
    )
    await conn.execute("VACUUM ANALYZE tether_outbox")
    store = await PostgresOutboxStore.connect(dsn)
    sink = MemorySink()
    relay = Relay(store, [sink], config=RelayConfig(batch_size=500, per_key_run=run))
    started = time.perf_counter()
    while (await relay.run_once()).claimed:
        pass
    elapsed = time.perf_counter() - started
    await store.close()
    await conn.close()
    assert len(sink.events) == events
    return events / elapsed


async def main(events: int, keys: int) -> None:
    async with temp_database() as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(full_schema_sql())
        await conn.close()
        runs = await drain(dsn, events, keys, 16)
        single = await drain(dsn, events, keys, 1)
    print(f"{'per_key_run':>12} {'events/s':>10}")
    print(f"{16:>12} {runs:>10.0f}")
    print(f"{1:>12} {single:>10.0f}")
    print(
        json.dumps(
            {
                "bench": "relay_hot_key",
                "events": events,
                "keys": keys,
                "tether_per_s": round(runs),
                "peer": "per_key_run=1",
                "peer_per_s": round(single),
                "ratio": round(runs / single, 2),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.keys))
