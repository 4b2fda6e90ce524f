"""Wake-ups: a notifying producer wakes an idle relay at once; without NOTIFY it polls."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from tests.support.scripted_sink import ScriptedSink
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore


async def delivery_time(pg_dsn: str, *, notify: bool, config: RelayConfig) -> float:
    store = await PostgresOutboxStore.connect(pg_dsn)
    sink = ScriptedSink()
    relay = Relay(store, [sink], config=config)
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    conn = await asyncpg.connect(pg_dsn)
    try:
        await asyncio.sleep(0.3)  # let the relay go idle and start listening
        started = time.perf_counter()
        async with conn.transaction():
            await add_event(conn, "Ping", {}, notify=notify)
        async with asyncio.timeout(10), sink.arrived:
            await sink.arrived.wait_for(lambda: len(sink.received) == 1)
        return time.perf_counter() - started
    finally:
        stop.set()
        await runner
        await conn.close()
        await store.close()


async def test_notify_wakes_an_idle_relay_long_before_its_poll(pg_dsn: str) -> None:
    idle = RelayConfig(poll_interval=5.0, idle_poll_interval=5.0, idle_after=0.0)
    assert await delivery_time(pg_dsn, notify=True, config=idle) < 2.0


async def test_without_notify_polling_delivers(pg_dsn: str) -> None:
    polling = RelayConfig(poll_interval=0.005, idle_poll_interval=0.05)
    assert await delivery_time(pg_dsn, notify=False, config=polling) < 5.0
