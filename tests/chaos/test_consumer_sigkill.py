"""A consumer SIGKILLed in the middle of a handler loses nothing and runs nothing twice.

Per broker: 400 events are published through Tether's sink; consumer A handles them until the
event with ``n == 150``, whose handler hangs with its transaction open, and is then killed with
SIGKILL. Consumer B, started afterwards, gets what A left (the hung message, what A had
prefetched or left unacked) once the broker redelivers it. In the end each event was handled
exactly once (one committed ``handled`` row per id, one inbox row per id) and nothing was
dead-lettered.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import asyncpg
import pytest

from tests.support.chaos import reap
from tests.support.consumers import broker_origin, dead_letters, read_line, spawn
from tether.core.envelope import make_event

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

EVENTS = 400
HANG_ON = 150


@pytest.mark.parametrize("broker", ["nats", "rabbitmq", "redis"])
async def test_a_consumer_killed_mid_handler_loses_and_repeats_nothing(
    broker: str, pg_dsn: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE handled (event_id text, n int, pid int)")
    procs: list[subprocess.Popen[str]] = []
    try:
        async with broker_origin(broker) as (origin, sink):
            events = [
                make_event(
                    "OrderPlaced", {"n": n}, aggregate_type="order", aggregate_id=f"o-{n % 40}"
                )
                for n in range(EVENTS)
            ]
            for start in range(0, EVENTS, 50):
                outcomes = await sink.publish(events[start : start + 50])
                assert all(o.ok for o in outcomes)
            first = spawn(broker, pg_dsn, origin, HANG_ON)
            procs.append(first)
            hung = await read_line(first, "hanging ", timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            handled_by_first = await conn.fetchval("SELECT count(*) FROM handled")
            assert 0 < handled_by_first < EVENTS
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM handled WHERE event_id = $1", hung.split()[1]
                )
                == 0
            )  # its transaction died with the process

            second = spawn(broker, pg_dsn, origin, None)
            procs.append(second)
            await read_line(second, "consumer ready", timeout=30)
            deadline = time.monotonic() + 90
            while await conn.fetchval("SELECT count(DISTINCT event_id) FROM handled") < EVENTS:
                assert time.monotonic() < deadline, "events were lost"
                assert second.poll() is None, "the second consumer died"
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.5)  # time for a wrongful redelivery to show up
            rows = await conn.fetchval("SELECT count(*) FROM handled")
            inbox = await conn.fetchval(
                "SELECT count(*) FROM tether_inbox WHERE consumer = 'billing'"
            )
            assert (rows, inbox) == (EVENTS, EVENTS)
            assert await dead_letters(broker, origin) == 0
    finally:
        reap(procs)
        await conn.close()
