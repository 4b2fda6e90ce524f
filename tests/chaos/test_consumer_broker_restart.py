"""The broker restarts under a running consumer: it reconnects alone, nothing is lost or repeated.

NATS (JetStream on disk) and RabbitMQ (quorum queue, persistent messages) are stopped and
started with their standard commands while a consumer process works through 600 events.
Redis is not here: the machine's Redis keeps nothing on disk, so a restart empties it; its
consumer's reconnection is tested by cutting its connection (tests/integration/consume).
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import asyncpg
import pytest

from tests.support import chaos
from tests.support.consumers import broker_origin, dead_letters, read_line, spawn
from tether.core.envelope import make_event

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

EVENTS = 600


async def handled(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(DISTINCT event_id) FROM handled"))


@pytest.mark.parametrize("broker", ["nats", "rabbitmq"])
async def test_a_consumer_rides_out_a_broker_restart(broker: str, pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE handled (event_id text, n int, pid int)")
    proc: subprocess.Popen[str] | None = None
    try:
        async with broker_origin(broker) as (origin, sink):
            events = [
                make_event(
                    "OrderPlaced", {"n": n}, aggregate_type="order", aggregate_id=f"o-{n % 40}"
                )
                for n in range(EVENTS)
            ]
            for start in range(0, EVENTS, 50):
                assert all(o.ok for o in await sink.publish(events[start : start + 50]))
            await sink.close()
            proc = spawn(broker, pg_dsn, origin, None, slow=True)
            await read_line(proc, "consumer ready", timeout=30)
            deadline = time.monotonic() + 60
            while await handled(conn) < 100:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            with chaos.guaranteed_restart(broker):
                await asyncio.to_thread(chaos.stop, broker)
                during = await handled(conn)
                await asyncio.sleep(2)
            assert during < EVENTS, "the consumer finished before the broker went down"
            deadline = time.monotonic() + 150
            while await handled(conn) < EVENTS:
                assert time.monotonic() < deadline, "events were lost"
                assert proc.poll() is None, "the consumer died instead of reconnecting"
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.5)  # time for a wrongful redelivery to show up
            assert await conn.fetchval("SELECT count(*) FROM handled") == EVENTS
            assert await dead_letters(broker, origin) == 0
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        await conn.close()
