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
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.chaos.consumer_process import open_source
from tests.support.services import AMQP_URL, NATS_URL, REDIS_URL
from tether.core.envelope import make_event
from tether.sinks.base import Sink

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

EVENTS = 400
HANG_ON = 150


def spawn(broker: str, dsn: str, origin: str, hang: int | None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.chaos.consumer_process", broker, dsn, origin]
    if hang is not None:
        argv.append(str(hang))
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


async def read_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    while not line.startswith(prefix):
        assert line, f"the consumer exited before printing {prefix!r}"
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    return line.strip()


@contextlib.asynccontextmanager
async def broker_origin(broker: str) -> AsyncIterator[tuple[str, Sink]]:
    """A fresh stream / exchange+queue / stream key, Tether's sink writing to it, cleaned up."""
    origin = f"chaos_{uuid.uuid4().hex[:10]}"
    sink: Sink
    if broker == "nats":
        import nats
        from nats.js.api import StreamConfig

        from tether.sinks.jetstream import JetStreamSink

        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=origin, subjects=[f"{origin}.>"]))
        sink = await JetStreamSink.connect(NATS_URL, stream=origin, subject_prefix=origin)
        try:
            yield origin, sink
        finally:
            await sink.close()
            for name in (origin, f"{origin}_DLQ"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name)
            await nc.close()
    elif broker == "rabbitmq":
        import aio_pika

        from tether.sinks.rabbitmq import RabbitMQSink

        source = await open_source(broker, origin)  # declares the queue the sink routes to
        await source.close()
        sink = await RabbitMQSink.connect(AMQP_URL, exchange=origin, routing_key="{topic}")
        try:
            yield origin, sink
        finally:
            await sink.close()
            conn = await aio_pika.connect(AMQP_URL)
            channel = await conn.channel()
            for queue in (origin, f"{origin}.dlq"):
                with contextlib.suppress(Exception):
                    await channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                await channel.exchange_delete(origin)
            await conn.close()
    else:
        import redis.asyncio as aioredis

        from tether.sinks.redis_streams import RedisStreamsSink

        sink = await RedisStreamsSink.connect(REDIS_URL, stream=origin)
        try:
            yield origin, sink
        finally:
            await sink.close()
            client = aioredis.Redis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match=f"*{origin}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


async def dead_letters(broker: str, origin: str) -> int:
    module = {"nats": "jetstream", "rabbitmq": "rabbitmq", "redis": "redis_streams"}[broker]
    box = await __import__(f"tether.consume.{module}", fromlist=["x"]).dead_letter_box(
        {"nats": NATS_URL, "rabbitmq": AMQP_URL, "redis": REDIS_URL}[broker],
        origin,
        origin if broker == "rabbitmq" else "billing",  # RabbitMQ: exchange, then queue
    )
    try:
        return len(await box.list(1000))
    finally:
        await box.close()


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
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        await conn.close()
