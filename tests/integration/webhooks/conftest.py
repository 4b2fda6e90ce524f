"""Fixtures for webhook tests: a pool, an endpoint store that may reach loopback, a relay with
the webhooks sink, and a dispatcher on a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tether.core.clock import Clock, FrozenClock
from tether.net import SsrfPolicy
from tether.outbox import add_event
from tether.outbox.relay import Relay
from tether.outbox.store_pg import PostgresOutboxStore
from tether.webhooks.secret_box import SecretBox
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore

LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def clock() -> FrozenClock:
    # Starts at the real time: the relay stamps deliveries with it.
    return FrozenClock(datetime.now(UTC))


@pytest.fixture
def store(pool: asyncpg.Pool, clock: FrozenClock) -> EndpointStore:
    return EndpointStore(pool, ssrf=LOOPBACK, box=SecretBox(SecretBox.generate_key()), clock=clock)


async def publish(
    pg_dsn: str, pool: asyncpg.Pool, events: list[dict[str, Any]], clock: Clock | None = None
) -> int:
    """Add ``events`` (each ``type`` plus add_event fields) and relay them through the webhooks
    sink until the outbox is empty; returns the deliveries written."""
    async with pool.acquire() as conn, conn.transaction():
        for e in events:
            fields = dict(e)
            await add_event(conn, fields.pop("type"), fields.pop("payload", {}), **fields)
    store = await PostgresOutboxStore.connect(pg_dsn)
    relay = Relay(store, [WebhooksSink(clock=clock)])
    try:
        while (await relay.run_once()).claimed:
            pass
    finally:
        await store.close()
    return int(await pool.fetchval("SELECT count(*) FROM tether_webhook_deliveries"))
