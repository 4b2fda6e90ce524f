"""``tether relay`` opens the RabbitMQ and Redis Streams sinks from their sections, by name."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tether.commands.relay import open_sinks
from tether.config import load_settings
from tether.core.envelope import make_event
from tether.sinks.rabbitmq import RabbitMQSink
from tether.sinks.redis_streams import RedisStreamsSink

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]


async def test_both_open_from_the_config_file(
    tmp_path: Path, amqp_url: str, redis_url: str
) -> None:
    token = uuid.uuid4().hex[:12]
    path = tmp_path / "tether.toml"
    path.write_text(
        f'[sinks.rabbitmq]\nurl = "{amqp_url}"\nexchange = "plugin.{token}"\n'
        f'[sinks.redis]\nurl = "{redis_url}"\nstream = "plugin{token}:{{topic}}"\nmaxlen = 10\n'
    )
    sinks = await open_sinks(load_settings(path, env={}), asyncio.Event(), patient=False)
    assert sinks is not None
    rabbit, redis_sink = sinks
    assert isinstance(rabbit, RabbitMQSink) and rabbit.name == "rabbitmq"
    assert rabbit.exchange == f"plugin.{token}"
    assert isinstance(redis_sink, RedisStreamsSink) and redis_sink.name == "redis"
    assert redis_sink.maxlen == 10
    event = make_event("OrderPlaced", {"n": 1}, topic="order")
    admin = aioredis.Redis.from_url(redis_url)
    try:
        assert (await redis_sink.publish([event]))[0].ok
        assert await admin.xlen(f"plugin{token}:order") == 1
        [outcome] = await rabbit.publish([event])  # no queue bound: returned, not a success
        assert not outcome.ok and "unroutable" in (outcome.error or "")
    finally:
        await rabbit._channel.exchange_delete(rabbit.exchange)
        for sink in sinks:
            await sink.close()
        await admin.delete(f"plugin{token}:order", f"{{plugin{token}:order}}:dedup:{event.id}")
        await admin.aclose()


async def test_an_unreachable_broker_fails_a_drain_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "tether.toml"
    path.write_text('[sinks.redis]\nurl = "redis://127.0.0.1:1/0"\n')
    with pytest.raises(Exception, match="cannot reach Redis"):
        await open_sinks(load_settings(path, env={}), asyncio.Event(), patient=False)
