"""Nothing is lost when relays die mid-batch and the broker restarts.

20,000 events over 1,000 aggregates (or, in the ``hot`` shape, 80% of them on 3 aggregates) are
produced while two relay processes publish them to JetStream; relays are SIGKILLed at random (at least 5 times) and NATS is restarted once.
Afterwards the stream holds every event id exactly once (JetStream de-duplicates re-publishes by
``Nats-Msg-Id``), each aggregate's events are in production order, and a consumer using the
inbox processes each id exactly once even when every message is delivered twice.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from tests.support import chaos
from tether.outbox import add_event
from tether.outbox.inbox import Inbox

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

EVENTS = 20_000
AGGREGATES = 1_000
PER_TX = 20


def spawn_relay(dsn: str, prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.relay_process", dsn, prefix],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    name, prefix = f"CHAOS_{tag}", f"chaos{tag}"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"], duplicate_window=900))
    await nc.close()
    yield name, prefix
    chaos.start("nats")
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_stream(name)
    await nc.close()


def aggregate_of(n: int, shape: str) -> int:
    if shape == "hot" and n % 5:
        return n % 3  # four events in five go to three hot aggregates
    return n % AGGREGATES


async def produce(dsn: str, ids: list[str], shape: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        counters = [0] * AGGREGATES
        for start in range(0, EVENTS, PER_TX):
            async with conn.transaction():
                for n in range(start, start + PER_TX):
                    agg = aggregate_of(n, shape)
                    ref = await add_event(
                        conn,
                        "Step",
                        {"i": counters[agg]},
                        aggregate_type="order",
                        aggregate_id=str(agg),
                    )
                    counters[agg] += 1
                    ids.append(str(ref.id))
            if start % 400 == 0:
                await asyncio.sleep(0.01)  # spread production over the chaos window
    finally:
        await conn.close()


async def chaos_monkey(
    dsn: str, prefix: str, relays: list[subprocess.Popen[bytes]], done: asyncio.Event
) -> int:
    kills, rng, restarted_nats = 0, random.Random(7), False
    while not done.is_set() or kills < 5:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        victim = rng.randrange(len(relays))
        relays[victim].kill()
        relays[victim].wait()
        kills += 1
        relays[victim] = spawn_relay(dsn, prefix)
        if kills == 3 and not restarted_nats:
            with chaos.guaranteed_restart("nats"):
                await asyncio.to_thread(chaos.stop, "nats")
                await asyncio.sleep(1.0)
            restarted_nats = True
    return kills


async def wait_drained(dsn: str, timeout: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT count(*) FROM tether_outbox") == 0:
                return
            await asyncio.sleep(0.2)
        left = await conn.fetchval("SELECT count(*) FROM tether_outbox")
        raise AssertionError(f"outbox not drained within {timeout}s: {left} rows left")
    finally:
        await conn.close()


async def read_stream(nats_url: str, name: str, prefix: str) -> list[tuple[str, str, int]]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        sub = await js.pull_subscribe(f"{prefix}.>", stream=name)
        out: list[tuple[str, str, int]] = []
        deadline = time.monotonic() + 60
        while len(out) < info.state.messages and time.monotonic() < deadline:
            for msg in await sub.fetch(1000, timeout=5):
                headers = msg.headers or {}
                out.append(
                    (
                        headers["Nats-Msg-Id"],
                        headers["ce-aggregateid"],
                        int(msg.data.split(b":")[1].rstrip(b"}")),
                    )
                )
                await msg.ack()
        return out
    finally:
        await nc.close()


async def consume_twice_with_inbox(dsn: str, messages: list[tuple[str, str, int]]) -> int:
    conn = await asyncpg.connect(dsn)
    processed = 0
    inbox = Inbox("chaos-consumer")
    try:
        for batch_start in range(0, len(messages), 500):
            batch = messages[batch_start : batch_start + 500]
            async with conn.transaction():
                for msg_id, _, _ in batch + batch:  # every message delivered twice
                    if await inbox.first_time(conn, msg_id):
                        processed += 1
    finally:
        await conn.close()
    return processed


@pytest.mark.parametrize("shape", ["spread", "hot"])
async def test_nothing_lost_under_relay_kills_and_nats_restart(
    pg_dsn: str, nats_url: str, stream: tuple[str, str], shape: str
) -> None:
    name, prefix = stream
    relays = [spawn_relay(pg_dsn, prefix) for _ in range(2)]
    ids: list[str] = []
    done = asyncio.Event()
    try:
        monkey = asyncio.create_task(chaos_monkey(pg_dsn, prefix, relays, done))
        await produce(pg_dsn, ids, shape)
        done.set()
        kills = await asyncio.wait_for(monkey, 120)
        await wait_drained(pg_dsn, timeout=120)
    finally:
        for proc in relays:
            proc.kill()
            proc.wait()
        chaos.start("nats")

    assert kills >= 5
    messages = await read_stream(nats_url, name, prefix)
    stream_ids = [m[0] for m in messages]
    assert len(ids) == EVENTS
    assert len(stream_ids) == EVENTS, "stream holds a duplicate or misses an event"
    assert set(stream_ids) == set(ids), "an event is missing from the stream"

    steps: dict[str, list[int]] = {}
    for _, aggregate, step in messages:
        steps.setdefault(aggregate, []).append(step)
    assert len(steps) == len({aggregate_of(n, shape) for n in range(EVENTS)})
    assert all(seq == sorted(seq) for seq in steps.values()), "per-aggregate order broken"

    assert await consume_twice_with_inbox(pg_dsn, messages) == EVENTS
