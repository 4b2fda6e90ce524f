"""The dispatcher against a real receiver that verifies every request with the
``standardwebhooks`` package: signatures, the stable webhook-id, rotation, the delivery log."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tests.integration.webhooks.conftest import LOOPBACK, publish
from tests.integration.webhooks.receiver import receiving
from tether.core.clock import FrozenClock
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings
from tether.webhooks.store import EndpointStore


def dispatcher(
    pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock, **config: object
) -> Dispatcher:
    return Dispatcher(
        pool,
        config=DispatcherConfig(**{"breaker": None, **config}),  # type: ignore[arg-type]
        ssrf=LOOPBACK,
        box=store.box,
        clock=clock,
    )


async def deliver_all(d: Dispatcher, clock: FrozenClock) -> None:
    """Run until nothing is live, moving the clock past deferrals (an endpoint at its
    concurrency limit); bounded."""
    for _ in range(50):
        started = await d.run_once()
        await d.drain()
        if not started:
            live = "SELECT count(*) FROM tether_webhook_deliveries WHERE state IN ('pending', 'claimed')"
            if not await d.pool.fetchval(live):
                return
            clock.advance(timedelta(seconds=1))
    raise AssertionError("deliveries still live after 50 rounds")


async def test_every_delivery_verifies_with_standardwebhooks(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving() as rx:
        ep = await store.create("acme", EndpointSettings(rx.url(), headers={"X-Team": "red"}))
        rx.secrets.append(str(ep.secrets.current))
        await publish(pg_dsn, pool, [
            {"type": "OrderPlaced", "tenant_id": "acme", "payload": {"n": i}} for i in range(20)
        ], clock)  # fmt: skip
        d = dispatcher(pool, store, clock)
        try:
            await deliver_all(d, clock)
        finally:
            await d.close()
    assert not rx.forged
    assert len(rx.verified) == 20
    assert sorted(r.json["data"]["n"] for r in rx.verified) == list(range(20))
    first = rx.verified[0]
    assert first.headers["x-team"] == "red"
    assert first.json["type"] == "OrderPlaced" and first.json["tenant"] == "acme"
    ids = await pool.fetch("SELECT id, state FROM tether_webhook_deliveries")
    assert {f"msg_{r['id']}" for r in ids} == {r.webhook_id for r in rx.verified}
    assert {r["state"] for r in ids} == {"done"}
    log = await pool.fetch("SELECT outcome, status_code, response FROM tether_webhook_attempts")
    assert len(log) == 20 and {(r["outcome"], r["status_code"], r["response"]) for r in log} == {
        ("ok", 200, "ok")
    }


async def test_a_rotation_signs_with_both_secrets_for_the_grace(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving() as rx:
        ep = await store.create(None, EndpointSettings(rx.url()))
        old = str(ep.secrets.current)
        ep = await store.rotate_secret(None, ep.id, grace=timedelta(hours=1))
        new = str(ep.secrets.current)
        d = dispatcher(pool, store, clock)
        try:
            rx.secrets[:] = [old]  # a receiver that has not switched yet
            await publish(pg_dsn, pool, [{"type": "A"}], clock)
            await deliver_all(d, clock)
            rx.secrets[:] = [new]  # one that has
            await publish(pg_dsn, pool, [{"type": "B"}], clock)
            await deliver_all(d, clock)
            clock.advance(timedelta(hours=2))  # the grace is over: the old one no longer signs
            d._cache.clear()
            rx.secrets[:] = [old]
            await publish(pg_dsn, pool, [{"type": "C"}], clock)
            await deliver_all(d, clock)
        finally:
            await d.close()
    assert [r.json["type"] for r in rx.verified] == ["A", "B"]
    assert [r.json["type"] for r in rx.forged] == ["C"]
    assert len(rx.forged[0].headers["webhook-signature"].split()) == 1
