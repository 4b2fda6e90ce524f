"""What consumer tests share: a fresh origin on each broker with Tether's sink writing
to it, consumer processes (``tests.chaos.consumer_process``) and a look at the dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.chaos.consumer_process import open_source
from tests.support.services import AMQP_URL, NATS_URL, REDIS_URL
from tether.consume import deadletter
from tether.consume.port import ConsumerSource, Delivery, Failure
from tether.core.envelope import Event, make_event
from tether.sinks.base import Sink


def spawn(
    broker: str, dsn: str, origin: str, hang: int | None, *, slow: bool = False
) -> subprocess.Popen[str]:
    """A consumer process; ``slow`` handlers take 20 ms each, so a restart lands mid-run."""
    argv = [
        sys.executable,
        "-m",
        "tests.chaos.consumer_process",
        broker,
        dsn,
        origin,
        str(hang if hang is not None else -1),
        "0.02" if slow else "0.002",
    ]
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


class Handler:
    """Writes one row per event in the consumer's transaction; fails the first try of some."""

    def __init__(self, fail_first: Callable[[int], bool] = lambda n: False) -> None:
        self.fail_first = fail_first
        self.calls: dict[str, int] = {}

    async def __call__(self, event: Event, tx: Any) -> None:
        key = str(event.id)
        self.calls[key] = self.calls.get(key, 0) + 1
        await tx.execute(
            text("INSERT INTO handled VALUES (:id, :n)"), {"id": key, "n": event.payload["n"]}
        )
        if self.calls[key] == 1 and self.fail_first(event.payload["n"]):
            raise ValueError(f"first try of {event.payload['n']} fails")


async def handled(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM handled"))).scalar_one())


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def orders(n: int, **kw: Any) -> list[Event]:
    return [
        make_event("OrderPlaced", {"n": i}, topic="order", aggregate_id=i, **kw) for i in range(n)
    ]


async def take(src: ConsumerSource, n: int = 1, limit: float = 10.0) -> list[Delivery]:
    """``n`` deliveries from ``src``, however many receives that takes (bounded)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + limit
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} deliveries came"
        got += await src.receive(n - len(got), 0.2)
    return got


def failure(deliveries: int = 3) -> Failure:
    return Failure("handler", "ValueError: card declined", deliveries, deadletter.now())
