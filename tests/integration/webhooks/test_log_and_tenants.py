"""The delivery log (search, replay, recover) and tenant isolation of endpoints and log."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tests.integration.webhooks.conftest import LOOPBACK, publish
from tests.integration.webhooks.receiver import Reply, receiving
from tether.core.clock import FrozenClock
from tether.core.errors import NotFoundError
from tether.webhooks.deliveries import DeliveryLog
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings, WebhookConfigError
from tether.webhooks.schedule import RetrySchedule
from tether.webhooks.store import EndpointStore


async def test_the_log_replay_and_recovery_stay_within_a_tenant(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, clock: FrozenClock
) -> None:
    answers = {"status": 500}
    async with receiving(respond=lambda _: Reply(answers["status"], body=b"x" * 5000)) as rx:
        a = await store.create("a", EndpointSettings(rx.url("/a")))
        b = await store.create("b", EndpointSettings(rx.url("/b")))
        rx.secrets += [str(a.secrets.current), str(b.secrets.current)]
        start = clock.now()
        await publish(pg_dsn, pool, [{"type": "A1", "tenant_id": "a"},
                                     {"type": "A2", "tenant_id": "a"},
                                     {"type": "B1", "tenant_id": "b"}], clock)  # fmt: skip
        config = DispatcherConfig(breaker=None, schedule=RetrySchedule.of([0], 0))
        d = Dispatcher(pool, config=config, ssrf=LOOPBACK, box=store.box, clock=clock)
        await d.run_once()
        await d.drain()
        log = DeliveryLog(pool, clock=clock)
        mine = await log.deliveries("a")
        assert sorted(i.extra["event_type"] for i in mine) == ["A1", "A2"]
        assert {i.state.value for i in mine} == {"dead"}
        assert [i.extra["event_type"] for i in await log.deliveries("b", state="dead")] == ["B1"]
        assert await log.deliveries("a", endpoint_id=b.id) == []
        assert len(await log.deliveries("a", since=start)) == 2
        assert await log.deliveries("a", until=start) == []
        attempts = await log.attempts("a", outcome="dead")
        assert len(attempts) == 2 and {x.status_code for x in attempts} == {500}
        assert all(len(x.response or "") == 1024 for x in attempts)  # a bounded snippet
        assert await log.attempts("b", delivery_id=mine[0].id) == []
        # Another tenant can neither read nor replay a's delivery.
        with pytest.raises(NotFoundError):
            await log.delivery("b", mine[0].id)
        with pytest.raises(NotFoundError):
            await log.replay("b", mine[0].id)
        answers["status"] = 200
        await log.replay("a", mine[0].id)
        with pytest.raises(WebhookConfigError, match="only done or dead"):
            await log.replay("a", mine[0].id)
        await d.run_once()
        await d.drain()
        assert [r.webhook_id for r in rx.verified] == [f"msg_{mine[0].id}"]
        assert await log.recover("a", a.id, since=start) == 1  # the other dead one
        assert await log.recover("b", a.id, since=start) == 0
        clock.advance(timedelta(seconds=1))
        await d.run_once()
        await d.drain()
        await d.close()
    assert sorted(r.json["type"] for r in rx.verified) == ["A1", "A2"]
    assert {i.state.value for i in await log.deliveries("a")} == {"done"}
    assert (await log.deliveries("b"))[0].state.value == "dead"


async def test_endpoints_of_one_tenant_are_invisible_to_another(store: EndpointStore) -> None:
    a = await store.create("a", EndpointSettings("http://127.0.0.1:9/a"))
    assert [e.id for e in await store.list("a")] == [a.id]
    assert await store.list("b") == []
    for call in (
        store.get("b", a.id),
        store.update("b", a.id, enabled=False),
        store.rotate_secret("b", a.id),
        store.delete("b", a.id),
        store.get(None, a.id),
    ):
        with pytest.raises(NotFoundError):
            await call
    assert (await store.get("a", a.id)).enabled


async def test_registration_refuses_unsafe_urls_and_reserved_headers(
    pool: asyncpg.Pool, store: EndpointStore
) -> None:
    strict = EndpointStore(pool, box=store.box)  # the default policy: no loopback
    for url in ("http://127.0.0.1/x", "http://169.254.169.254/", "ftp://example.com/",
                "http://user:pw@example.com/", "http://[::ffff:10.0.0.1]/"):  # fmt: skip
        with pytest.raises(WebhookConfigError, match="url refused"):
            await strict.create("a", EndpointSettings(url))
    for name in ("Host", "Transfer-Encoding", "webhook-signature", "Webhook-Id", "Connection"):
        with pytest.raises(WebhookConfigError, match="set by the dispatcher"):
            EndpointSettings("https://example.com/", headers={name: "x"})
    with pytest.raises(WebhookConfigError, match="CR, LF"):
        EndpointSettings("https://example.com/", headers={"X-A": "1\r\nX-B: 2"})
    for bad in ([], ["**"], ["Order *"], "Order*"):
        with pytest.raises(WebhookConfigError, match="filter"):
            EndpointSettings("https://example.com/", filters=bad)  # type: ignore[arg-type]
    ep = await store.create("a", EndpointSettings("http://127.0.0.1:9/a"))
    with pytest.raises(WebhookConfigError, match="url refused"):
        await strict.update("a", ep.id, url="http://10.1.2.3/")
    assert "whsec_" not in repr(ep) and str(ep.secrets.current) not in str(ep.public())
