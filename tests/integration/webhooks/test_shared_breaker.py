"""One circuit breaker per endpoint, shared by dispatcher processes through Redis.

Two dispatchers (two ``Dispatcher`` objects with their own gates, as two processes have) share
a ``RedisBreakerStore``: the failures one of them sees open the circuit for the other, which
then defers its delivery without sending it. On the dispatchers' frozen clock, so the open
period ends when the test says. ``tether webhooks run --redis-url`` is checked for its errors
here and for its happy path in ``test_cli.py``.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import redis.asyncio as aioredis
from typer.testing import CliRunner

from tests.integration.webhooks.conftest import LOOPBACK, publish
from tests.integration.webhooks.receiver import Reply, receiving
from tether.cli import app
from tether.core.clock import FrozenClock
from tether.guard import BreakerPolicy, RedisBreakerStore
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings
from tether.webhooks.schedule import RetrySchedule
from tether.webhooks.store import EndpointStore

BREAKER = BreakerPolicy(failure_threshold=2, window_s=60, open_s=30)
SCHEDULE = RetrySchedule.of([0] * 10, spread=0)


async def step(d: Dispatcher) -> int:
    started = await d.run_once()
    await d.drain()
    return started


async def test_failures_seen_by_one_dispatcher_open_the_circuit_for_the_other(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock, redis_url: str
) -> None:
    client = aioredis.from_url(redis_url)
    config = DispatcherConfig(breaker=BREAKER, schedule=SCHEDULE, max_in_flight=1)
    shared = RedisBreakerStore(client)
    pair = [
        Dispatcher(
            pool,
            config=config,
            ssrf=LOOPBACK,
            box=store.box,
            clock=clock,
            breaker_store=shared,
            name=name,
        )
        for name in ("a", "b")
    ]
    a, b = pair
    try:
        async with receiving(respond=lambda _: Reply(503)) as rx:
            ep = await store.create(None, EndpointSettings(rx.url(), concurrency=1))
            rx.secrets.append(str(ep.secrets.current))
            await publish(pg_dsn, pool, [{"type": "A"}, {"type": "B"}], clock)
            assert await step(a) == 1 and await step(a) == 1  # two failures: open
            assert len(rx.answered) == 2
            assert await step(b) == 1  # b's own gates never saw a failure
            assert len(rx.answered) == 2 and b.deferred == 1  # deferred, nothing sent
            key = f"tether:guard:webhook:{ep.id}"
            assert await client.exists(key)  # the circuit lives in Redis
            clock.advance(timedelta(seconds=31))  # open period over, on the shared clock
            assert await step(b) >= 1
            assert len(rx.answered) == 3  # b sends the half-open probe
            await client.delete(key)
    finally:
        for d in pair:
            await d.close()
        await client.aclose()


def test_run_refuses_a_redis_url_it_cannot_use(pg_dsn: str) -> None:
    runner = CliRunner()
    base = ["webhooks", "run", "--database-url", pg_dsn]
    bad = runner.invoke(app, [*base, "--redis-url", "http://u:s3cret@127.0.0.1:6379"])
    assert bad.exit_code == 2
    assert "use redis://" in bad.output and "s3cret" not in bad.output
    away = runner.invoke(app, [*base, "--redis-url", "redis://u:s3cret@127.0.0.1:1/0"])
    assert away.exit_code == 1
    assert "Redis unreachable" in away.output and "s3cret" not in away.output
