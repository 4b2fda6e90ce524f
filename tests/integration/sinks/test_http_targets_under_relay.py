"""The http and slack sinks under a real relay: a target that says "later" (429 with
Retry-After) or Slack's one-message-per-second pace defers events without spending attempts.
Every event allows a single attempt, so a charged one would dead-letter it: in the end every
event arrived exactly once and none is dead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
import pytest

from tests.support.http_receiver import Answer, Received, Receiver, receiving
from tether.net import SsrfPolicy
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks import slack
from tether.sinks.base import Sink
from tether.sinks.http import HttpSink
from tether.sinks.slack import SlackSink

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]
LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])


async def load(dsn: str, n: int) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            refs = [
                await add_event(conn, "OrderPlaced", {"n": i}, topic="order", max_attempts=1)
                for i in range(n)
            ]
    finally:
        await conn.close()
    return {str(r.id) for r in refs}


async def relay_until(dsn: str, sink: Sink, done: Callable[[], Awaitable[bool]]) -> Relay:
    store = await PostgresOutboxStore.connect(dsn, connections=2)
    relay = Relay(store, [sink], config=RelayConfig(batch_size=50))
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(60):
            while not await done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
        await store.close()
        await sink.close()
    return relay


def ids(receiver: Receiver, read: Callable[[Received], str]) -> list[str]:
    return [read(r) for r in receiver.requests]


async def test_retry_after_defers_without_spending_attempts(pg_dsn: str) -> None:
    answered = {"n": 0}

    def respond(request: Received) -> Answer:
        answered["n"] += 1
        if answered["n"] in (3, 20):  # twice: "too many requests, come back in 1 s"
            return Answer(429, {"retry-after": "1"})
        return Answer()

    expected = await load(pg_dsn, 40)
    async with receiving(respond) as receiver:
        sink = await HttpSink.connect(f"{receiver.url}/hook", policy=LOOPBACK, max_in_flight=4)

        async def all_arrived() -> bool:
            return len(receiver.requests) >= len(expected)

        relay = await relay_until(pg_dsn, sink, all_arrived)
        got = ids(receiver, lambda r: r.headers["ce-id"])
    assert relay.stats.dead == 0 and relay.stats.retried == 0, relay.stats
    assert relay.stats.deferred > 0
    assert sorted(got) == sorted(expected)  # each once: what went through is not sent again


async def test_slack_pace_defers_a_burst_and_drops_nothing(pg_dsn: str) -> None:
    slack._PACERS.clear()
    expected = await load(pg_dsn, 3)
    async with receiving() as receiver:
        sink = await SlackSink.connect(
            f"{receiver.url}/services/T/B/x", policy=LOOPBACK, max_wait=1.0
        )

        async def all_arrived() -> bool:
            return len(receiver.requests) >= len(expected)

        relay = await relay_until(pg_dsn, sink, all_arrived)
        got = ids(
            receiver, lambda r: orjson.loads(r.body)["blocks"][-1]["elements"][0]["text"].split()[1]
        )
        gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:])]
    assert relay.stats.dead == 0 and relay.stats.retried == 0, relay.stats
    assert sorted(got) == sorted(expected)
    assert all(gap >= 0.95 for gap in gaps), gaps
