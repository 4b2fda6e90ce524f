"""The relay through the pooler: every event delivered, in key order, no batch retried, nothing
logged at WARNING or above. To a memory sink in process, and to JetStream as ``tether relay``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.memory import MemorySink
from tether.store.postgres import pooler
from tether.store.postgres.pooler import connect_kwargs

pytestmark = pytest.mark.postgres

EVENTS = 300
KEYS = 10


async def produce(pooled_dsn: str) -> list[uuid.UUID]:
    """Keyed events (per-key order matters) and unkeyed ones, from four producers at once."""
    pool = await asyncpg.create_pool(
        pooled_dsn, min_size=4, max_size=4, **connect_kwargs("transaction")
    )

    async def one(n: int) -> uuid.UUID:
        async with pool.acquire() as conn, conn.transaction():
            key = {"aggregate_type": "order", "aggregate_id": str(n % KEYS)} if n % 3 else {}
            return (await add_event(conn, "OrderPlaced", {"n": n}, **key)).id

    try:
        ids: list[uuid.UUID] = []
        # Waves of one event per key, so each key's events commit in the order of n.
        for start in range(0, EVENTS, KEYS):
            ids += await asyncio.gather(*(one(n) for n in range(start, start + KEYS)))
        return ids
    finally:
        await pool.close()


async def test_relay_to_memory(pooled_dsn: str, problems_logged: Callable[[], list[str]]) -> None:
    ids = await produce(pooled_dsn)
    store = await PostgresOutboxStore.connect(pooled_dsn, connections=2, pooler_mode="transaction")
    sink = MemorySink()
    relay = Relay(store, [sink], config=RelayConfig(batch_size=25, concurrency=2))
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    try:
        await sink.wait_for(EVENTS, timeout=30)
    finally:
        stop.set()
        await runner
        await store.close()
    assert sorted(sink.ids) == sorted(ids)
    assert len(sink.ids) == EVENTS, "an event was published twice: a batch was retried"
    for key in map(str, range(KEYS)):
        ns = [e.payload["n"] for e in sink.events if e.aggregate_id == key]
        assert ns == sorted(ns), f"key {key} out of order: {ns}"
    assert (relay.stats.loop_errors, relay.stats.retried) == (0, 0), relay.stats.last_error
    assert relay.stats.batches >= EVENTS // 25
    assert problems_logged() == []


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[tuple[str, str]]:
    token = uuid.uuid4().hex[:12]
    name, prefix = f"POOLER_{token}", f"pooler{token}"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"]))
    try:
        yield name, prefix
    finally:
        await js.delete_stream(name)
        await nc.close()


async def test_tether_relay_to_jetstream(
    pooled_dsn: str, direct_dsn: str, nats_url: str, stream: tuple[str, str]
) -> None:
    ids = await produce(pooled_dsn)
    name, prefix = stream
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")} | {
        "TETHER_DATABASE_URL": pooled_dsn,
        "TETHER_DATABASE_POOLER": "transaction",
        "TETHER_SINKS_NATS_STREAM": name,
        "TETHER_SINKS_NATS_SUBJECT_PREFIX": prefix,
    }
    command = [sys.executable, "-m", "tether.cli", "relay", "--drain", "--nats-url", nats_url]
    command += ["--batch-size", "25", "--concurrency", "2"]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    problems = [
        line for line in result.stderr.splitlines() if " WARNING " in line or " ERROR " in line
    ]
    assert problems == [], result.stderr
    assert f"{EVENTS} published, 0 retried" in result.stderr, result.stderr

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(name)
    finally:
        await nc.close()
    assert info.state.messages == len(ids)
    conn = await asyncpg.connect(direct_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tether_outbox") == 0
    finally:
        await conn.close()


async def test_relay_claims_run_with_its_planner_settings(
    pooled_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a transaction pooler the settings cannot ride on the session: each claim
    # transaction must set them. Seen from inside the claim's own transaction.
    seen: list[str] = []
    original = pooler.apply_local

    async def apply_and_look(conn: Any, settings: Mapping[str, str]) -> None:
        await original(conn, settings)
        seen.append(await conn.fetchval("SHOW enable_bitmapscan"))

    monkeypatch.setattr(pooler, "apply_local", apply_and_look)
    await produce(pooled_dsn)
    store = await PostgresOutboxStore.connect(pooled_dsn, pooler_mode="transaction")
    relay = Relay(store, [MemorySink()], config=RelayConfig(batch_size=100))
    try:
        while (await relay.run_once()).claimed:
            pass
    finally:
        await store.close()
    assert len(seen) >= EVENTS // 100 + 1, "the relay store never applied its settings"
    assert set(seen) == {"off"}
