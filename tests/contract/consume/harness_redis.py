"""The Redis Streams consumer's harness: a stream the real sink writes, one group per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping

import redis.asyncio as aioredis

from tests.contract.consume.harness import ConsumerHarness
from tests.support import services
from tether.consume.port import ConsumerSource, DeadLetterBox
from tether.consume.redis_streams import RedisStreamsSource, dead_letter_box
from tether.core.envelope import Event
from tether.sinks.redis_streams import RedisStreamsSink


async def redis_harness() -> AsyncIterator[ConsumerHarness]:
    services.require("redis")
    url = services.REDIS_URL
    prefix = f"contract{uuid.uuid4().hex[:12]}"
    stream, group = f"{prefix}:orders", "contract"
    sink = await RedisStreamsSink.connect(url, stream=stream)
    admin = aioredis.Redis.from_url(url)
    opened: list[ConsumerSource] = []
    boxes: list[DeadLetterBox] = []

    async def open_source() -> ConsumerSource:
        source = await RedisStreamsSource.connect(url, stream=stream, group=group, claim_idle=1.0)
        opened.append(source)
        return source

    async def dead_letters() -> DeadLetterBox:
        box = await dead_letter_box(url, stream, group)
        boxes.append(box)
        return box

    async def publish(event: Event) -> None:
        [outcome] = await sink.publish([event])
        assert outcome.ok, outcome.error

    async def publish_raw(attributes: Mapping[str, str], data: bytes) -> None:
        await admin.xadd(stream, {**attributes, "data": data})

    try:
        yield ConsumerHarness(open_source, dead_letters, publish, publish_raw, redelivery=1.5)
    finally:
        for closable in [*opened, *boxes]:
            await closable.close()
        await sink.close()
        keys = [k async for k in admin.scan_iter(match=f"*{prefix}*", count=1000)]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()
