"""A Postgres restart under load loses nothing, and the relay reconnects by itself.

Producers keep committing events while PostgreSQL is stopped and started again; a transaction
that fails is retried by the producer (it never committed, so its event never existed). A
commit whose outcome is unknown (the connection died during COMMIT) may or may not exist.
Afterwards, with the relay still running, the sink holds every committed event and nothing
else, and the outbox is empty: no event left pending or dead.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from tests.support import chaos
from tests.support.scripted_sink import ScriptedSink
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

TARGET = 3000


async def produce(dsn: str, committed: set[str], unknown: set[str], stop: asyncio.Event) -> None:
    """Keep committing 10-event transactions; after any failure, reconnect and try again."""
    conn: asyncpg.Connection | None = None
    while len(committed) < TARGET and not stop.is_set():
        ids: list[str] = []
        committing = False
        try:
            if conn is None:
                conn = await asyncpg.connect(dsn, timeout=2)
            async with conn.transaction():
                for _ in range(10):
                    ids.append(str((await add_event(conn, "Tick", {"n": len(committed)})).id))
                committing = True
            committed.update(ids)
            await asyncio.sleep(0.005)
        except Exception:  # the server is going away: any driver error is expected here
            if committing:
                unknown.update(ids)  # the commit may or may not have happened
            if conn is not None:
                conn.terminate()
                conn = None
            await asyncio.sleep(0.1)
    if conn is not None:
        await conn.close()


async def test_relay_survives_a_postgres_restart(pg_dsn: str) -> None:
    sink = ScriptedSink()
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [sink], config=RelayConfig(batch_size=100))
    stop = asyncio.Event()
    committed: set[str] = set()
    unknown: set[str] = set()
    runner = asyncio.create_task(relay.run(stop))
    producer = asyncio.create_task(produce(pg_dsn, committed, unknown, stop))
    try:
        async with asyncio.timeout(30):
            while len(committed) < TARGET // 3:
                await asyncio.sleep(0.05)
        with chaos.guaranteed_restart("postgres"):
            await asyncio.to_thread(chaos.stop, "postgres")
            await asyncio.sleep(1.0)
        async with asyncio.timeout(90):
            await producer
            # Wait with the relay still running: it must deliver every committed event and
            # leave the outbox empty by itself.
            conn = await asyncpg.connect(pg_dsn)
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not (
                    committed <= delivered(sink) and await live_rows(conn) == 0
                ):
                    await asyncio.sleep(0.1)
                left = dict(
                    await conn.fetch("SELECT state, count(*) FROM tether_outbox GROUP BY state")
                )
            finally:
                await conn.close()
    finally:
        stop.set()
        chaos.start("postgres")
        await asyncio.wait_for(runner, 30)
        await store.close()
    assert relay.stats.loop_errors > 0, "the restart should have interrupted the relay"
    assert left == {}, "published events are deleted; nothing may be left pending or dead"
    assert committed <= delivered(sink)
    assert delivered(sink) <= committed | unknown


def delivered(sink: ScriptedSink) -> set[str]:
    return {str(e.id) for e in sink.received}


async def live_rows(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM tether_outbox"))
