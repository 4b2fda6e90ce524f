"""Fan-out: the webhooks sink writes one delivery per matching enabled endpoint, in the relay's
transaction, once per (event, endpoint) however often the event is relayed."""

from __future__ import annotations

import asyncpg

from tests.integration.webhooks.conftest import publish
from tether.outbox.relay import Relay
from tether.outbox.store_pg import PostgresOutboxStore
from tether.webhooks.model import EndpointSettings, Priority
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore

URL = "http://127.0.0.1:9/hook"


async def test_each_event_reaches_the_endpoints_whose_filters_match(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore
) -> None:
    every = await store.create("acme", EndpointSettings(URL, ("*",), priority=Priority.HIGH))
    orders = await store.create("acme", EndpointSettings(URL, ("Order*",)))
    exact = await store.create("acme", EndpointSettings(URL, ("orders.Shipped", "Paid")))
    await store.create("acme", EndpointSettings(URL, ("*",), enabled=False))
    other = await store.create("globex", EndpointSettings(URL, ("*",)))
    n = await publish(
        pg_dsn,
        pool,
        [
            {"type": "OrderPlaced", "tenant_id": "acme", "payload": {"n": 1}},
            {"type": "orders.Shipped", "tenant_id": "acme"},
            {"type": "Paid", "tenant_id": "globex"},
            {"type": "Untenanted"},
        ],
    )
    rows = await pool.fetch(
        "SELECT endpoint_id, event_type, queue, tenant_id FROM tether_webhook_deliveries"
    )
    got = {(r["endpoint_id"], r["event_type"]) for r in rows}
    assert got == {
        (every.id, "OrderPlaced"),
        (every.id, "orders.Shipped"),
        (orders.id, "OrderPlaced"),
        (exact.id, "orders.Shipped"),
        (other.id, "Paid"),
    }
    assert n == 5
    assert {r["queue"] for r in rows if r["endpoint_id"] == every.id} == {"high"}
    assert await pool.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'pending'") == 0


async def test_a_rerun_of_the_same_event_adds_no_second_delivery(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore
) -> None:
    await store.create(None, EndpointSettings(URL))
    await publish(pg_dsn, pool, [{"type": "Ping"}])
    # The relay's transaction rolled back after the fan-out (a crash before commit) and the
    # event is relayed again: still one delivery.
    await pool.execute("UPDATE tether_outbox SET state = 'pending'")  # no-op when deleted
    event_id = await pool.fetchval("SELECT event_id FROM tether_webhook_deliveries")
    from tether.core.envelope import make_event

    event = make_event("Ping", {}, id=event_id)
    async with pool.acquire() as conn, conn.transaction():
        assert all(o.ok for o in await WebhooksSink().publish_in(conn, [event]))
    assert await pool.fetchval("SELECT count(*) FROM tether_webhook_deliveries") == 1


async def test_a_rolled_back_batch_leaves_neither_the_settle_nor_the_deliveries(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore
) -> None:
    await store.create(None, EndpointSettings(URL))
    async with pool.acquire() as conn, conn.transaction():
        from tether.outbox import add_event

        await add_event(conn, "Ping", {})
    outbox = await PostgresOutboxStore.connect(pg_dsn)
    relay = Relay(outbox, [WebhooksSink()])
    try:
        async with outbox.claim(10) as batch:
            tx = batch.connection  # type: ignore[attr-defined]
            published, _retries, _ = await relay._deliver(batch.events, tx)
            assert (
                published
                and await tx.fetchval("SELECT count(*) FROM tether_webhook_deliveries") == 1
            )
            await tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # crash
    except Exception:
        pass
    finally:
        await outbox.close()
    assert await pool.fetchval("SELECT count(*) FROM tether_webhook_deliveries") == 0
    assert await pool.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'pending'") == 1


async def test_an_oversized_body_dead_letters_the_event_for_webhooks(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore
) -> None:
    await store.create(None, EndpointSettings(URL))
    async with pool.acquire() as conn, conn.transaction():
        from tether.outbox import add_event

        await add_event(conn, "Big", {"blob": "x" * 2000})
    outbox = await PostgresOutboxStore.connect(pg_dsn)
    relay = Relay(outbox, [WebhooksSink(max_payload_bytes=1000)])
    try:
        report = await relay.run_once()
    finally:
        await outbox.close()
    assert report.dead == 1
    error = await pool.fetchval("SELECT last_error FROM tether_outbox")
    assert "over the 1000 byte limit" in error
    assert await pool.fetchval("SELECT count(*) FROM tether_webhook_deliveries") == 0
