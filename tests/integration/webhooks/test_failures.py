"""What each answer does, on a frozen clock: the retry schedule, Retry-After, 410, permanent
4xx, auto-disable after N days of failures, the breaker's deferral, priority shares."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import orjson

from tests.integration.webhooks.conftest import LOOPBACK, publish
from tests.integration.webhooks.receiver import Reply, receiving
from tether.core.clock import FrozenClock
from tether.guard import BreakerPolicy
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings, Priority
from tether.webhooks.schedule import RetrySchedule
from tether.webhooks.sender import SendPolicy
from tether.webhooks.store import EndpointStore

NO_JITTER = RetrySchedule.of([0, 5, 300], spread=0)


def make(pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock, **config: Any) -> Dispatcher:
    settings = {"breaker": None, "schedule": NO_JITTER, **config}
    return Dispatcher(
        pool, config=DispatcherConfig(**settings), ssrf=LOOPBACK, box=store.box, clock=clock
    )


async def step(d: Dispatcher) -> int:
    started = await d.run_once()
    await d.drain()
    return started


async def delivery(pool: asyncpg.Pool) -> Any:
    return await pool.fetchrow("SELECT * FROM tether_webhook_deliveries")


async def test_failures_follow_the_schedule_then_dead_letter(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving(respond=lambda _: Reply(500, body=b"boom")) as rx:
        ep = await store.create(None, EndpointSettings(rx.url()))
        rx.secrets.append(str(ep.secrets.current))
        await publish(pg_dsn, pool, [{"type": "A"}], clock)
        d = make(pool, store, clock)
        t0 = clock.now()
        assert await step(d) == 1
        row = await delivery(pool)
        assert (row["state"], row["attempts"], row["available_at"]) == (
            "pending",
            1,
            t0 + timedelta(seconds=5),
        )
        clock.advance(4.9)
        assert await step(d) == 0
        clock.advance(0.1)
        assert await step(d) == 1
        assert (await delivery(pool))["available_at"] == clock.now() + timedelta(seconds=300)
        clock.advance(300)
        assert await step(d) == 1
        await d.close()
    row = await delivery(pool)
    assert (row["state"], row["attempts"], row["last_error"]) == ("dead", 3, "HTTP 500")
    log = await pool.fetch(
        "SELECT attempt, outcome, status_code, response FROM tether_webhook_attempts ORDER BY id"
    )
    assert [tuple(r) for r in log] == [
        (1, "retry", 500, "boom"),
        (2, "retry", 500, "boom"),
        (3, "dead", 500, "boom"),
    ]
    assert len({r.webhook_id for r, _ in rx.answered}) == 1  # the same id on every retry


async def test_retry_after_sets_the_wait_up_to_the_cap(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    waits = iter(["120", "999999"])
    async with receiving(respond=lambda _: Reply(429, {"retry-after": next(waits)})) as rx:
        ep = await store.create(None, EndpointSettings(rx.url()))
        rx.secrets.append(str(ep.secrets.current))
        await publish(pg_dsn, pool, [{"type": "A"}], clock)
        d = make(pool, store, clock, retry_after_cap=timedelta(minutes=10))
        await step(d)
        assert (await delivery(pool))["available_at"] == clock.now() + timedelta(seconds=120)
        clock.advance(120)
        await step(d)
        assert (await delivery(pool))["available_at"] == clock.now() + timedelta(minutes=10)
        await d.close()


async def test_410_disables_the_endpoint_and_tells_the_tenant(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving(respond=lambda _: Reply(410)) as rx:
        ep = await store.create("acme", EndpointSettings(rx.url()))
        rx.secrets.append(str(ep.secrets.current))
        await publish(pg_dsn, pool, [{"type": "A", "tenant_id": "acme"}] * 2, clock)
        d = make(pool, store, clock, max_in_flight=1)
        for _ in range(5):
            await step(d)
            clock.advance(1)
        await d.close()
    assert len(rx.answered) == 1  # the second delivery was never sent
    states = await pool.fetch("SELECT state, last_error FROM tether_webhook_deliveries")
    assert sorted(r["last_error"][:20] for r in states) == ["HTTP 410", "endpoint is disabled"]
    assert {r["state"] for r in states} == {"dead"}
    after = await store.get("acme", ep.id)
    assert not after.enabled and "410" in (after.disabled_reason or "")
    told = await pool.fetch("SELECT type, tenant_id, payload FROM tether_outbox")
    assert [(r["type"], r["tenant_id"]) for r in told] == [("WebhookEndpointDisabled", "acme")]
    assert orjson.loads(told[0]["payload"])["endpoint_id"] == str(ep.id)


async def test_permanent_4xx_dead_letters_unless_the_policy_retries(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving(respond=lambda _: Reply(400)) as rx:
        ep = await store.create(None, EndpointSettings(rx.url()))
        rx.secrets.append(str(ep.secrets.current))
        await publish(pg_dsn, pool, [{"type": "A"}], clock)
        await step(make(pool, store, clock))
        assert ((await delivery(pool))["state"], (await delivery(pool))["attempts"]) == ("dead", 1)
        await pool.execute("DELETE FROM tether_webhook_deliveries")
        await publish(pg_dsn, pool, [{"type": "B"}], clock)
        await step(make(pool, store, clock, send=SendPolicy(permanent_4xx=False)))
        assert (await delivery(pool))["state"] == "pending"


async def test_an_endpoint_failing_for_five_days_is_disabled_once(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    answers = {"status": 500}
    async with receiving(respond=lambda _: Reply(answers["status"])) as rx:
        ep = await store.create("acme", EndpointSettings(rx.url()))
        rx.secrets.append(str(ep.secrets.current))
        daily = RetrySchedule.of([0] + [86400] * 20, spread=0)
        d = make(pool, store, clock, schedule=daily)
        await publish(pg_dsn, pool, [{"type": "A", "tenant_id": "acme"}], clock)
        await step(d)  # day 0: failing since now
        clock.advance(timedelta(days=1))
        answers["status"] = 200
        await publish(pg_dsn, pool, [{"type": "B", "tenant_id": "acme"}], clock)
        await step(d)  # a success resets the clock (and the retry of A fails... or not)
        assert (await store.get("acme", ep.id)).failing_since is None
        answers["status"] = 500
        await publish(pg_dsn, pool, [{"type": "C", "tenant_id": "acme"}], clock)
        start = clock.now()
        for _ in range(6):
            await step(d)
            clock.advance(timedelta(days=1))
        await d.close()
    after = await store.get("acme", ep.id)
    assert not after.enabled and "5 days" in (after.disabled_reason or "")
    assert after.failing_since == start
    events = await pool.fetchval(
        "SELECT count(*) FROM tether_outbox WHERE type = 'WebhookEndpointDisabled'"
    )
    assert events == 1


async def test_an_open_breaker_defers_without_spending_attempts(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving(respond=lambda _: Reply(503)) as rx:
        ep = await store.create(None, EndpointSettings(rx.url(), concurrency=1))
        rx.secrets.append(str(ep.secrets.current))
        breaker = BreakerPolicy(failure_threshold=2, window_s=60, open_s=30)
        d = make(pool, store, clock, breaker=breaker, schedule=RetrySchedule.of([0, 1] * 5, 0))
        await publish(pg_dsn, pool, [{"type": "A"}], clock)
        for _ in range(2):
            await step(d)
            clock.advance(1)
        assert len(rx.answered) == 2 and (await delivery(pool))["attempts"] == 2
        assert await step(d) == 1  # open: deferred, never sent, no attempt spent
        row = await delivery(pool)
        assert (row["state"], row["attempts"]) == ("pending", 2)
        assert "circuit open" in row["last_error"]
        clock.advance(timedelta(seconds=28))  # the breaker keeps the dispatcher's clock
        assert await step(d) == 0  # deferred for as long as the circuit stays open (30 s)
        clock.advance(timedelta(seconds=2))  # past it: half-open, one probe goes and fails
        assert await step(d) == 1
        assert len(rx.answered) == 3 and (await delivery(pool))["attempts"] == 3
        clock.advance(timedelta(seconds=1))  # open again: deferred, no attempt spent
        assert await step(d) == 1
        row = await delivery(pool)
        assert (row["state"], row["attempts"]) == ("pending", 3)
        assert "circuit open" in row["last_error"]
        await d.close()
    assert len(rx.answered) == 3
    assert await pool.fetchval("SELECT count(*) FROM tether_webhook_attempts") == 3


async def test_high_priority_goes_first_without_starving_low(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    async with receiving() as rx:
        high = await store.create(
            "h", EndpointSettings(rx.url("/high"), priority=Priority.HIGH, concurrency=100)
        )
        low = await store.create(
            "l", EndpointSettings(rx.url("/low"), priority=Priority.LOW, concurrency=100)
        )
        rx.secrets += [str(high.secrets.current), str(low.secrets.current)]
        await publish(pg_dsn, pool, [{"type": "L", "tenant_id": "l"}] * 20
                      + [{"type": "H", "tenant_id": "h"}] * 60, clock)  # fmt: skip
        d = make(pool, store, clock, max_in_flight=10)
        while await step(d):
            pass
        await d.close()
    order = [r.path for r in rx.verified]
    assert len(order) == 80
    first = order[:30]
    assert first.count("/high") >= 22  # high first, though its events came later
    assert first.count("/low") >= 2  # and low keeps moving meanwhile
