"""The consumer dead-letter page over HTTP against real brokers (Redis Streams, JetStream,
RabbitMQ): each consumer's first dead letters with error, deliveries and original headers,
replay of one and of all through a confirmation with the count, refused to a viewer, audited;
a broker that is down is an error box naming it, its password masked."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest

from tests.chaos.consumer_process import open_source
from tests.integration.dashboard.support import OPERATOR, VIEWER, capabilities, dashboard
from tests.integration.dashboard.test_http import client, csrf, login
from tests.support.consumers import broker_origin
from tests.support.services import AMQP_URL, NATS_URL, REDIS_URL
from tether.consume import ConsumerSource
from tether.consume.boxes import Broker, dead_letter_box
from tether.consume.port import Delivery, Failure
from tether.core.envelope import make_event
from tether.dashboard import ConsumerDlq, parse_consumer_dlqs

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]

BROKERS = ("redis", "nats", "rabbitmq")
URLS = {"nats": NATS_URL, "rabbitmq": AMQP_URL, "redis": REDIS_URL}
DOWN = "redis://ops:s3cret@127.0.0.1:1/0"


def consumer_of(broker: str, origin: str) -> ConsumerDlq:
    consumer = origin if broker == "rabbitmq" else "billing"  # RabbitMQ: the queue
    return ConsumerDlq(Broker(broker), URLS[broker], origin, consumer)


async def dead_letter(source: ConsumerSource, n: int) -> list[Delivery]:
    """Take ``n`` deliveries and dead-letter them through the adapter itself."""
    taken: list[Delivery] = []
    async with asyncio.timeout(20):
        while len(taken) < n:
            taken += await source.receive(n - len(taken), 0.5)
    for d in taken:
        failure = Failure(
            "handler", "RuntimeError: ledger <closed>", d.deliveries, datetime.now(UTC)
        )
        await source.dead_letter(d, failure)
    return taken


async def letters(dlq: ConsumerDlq) -> list[str]:
    async with dead_letter_box(dlq.broker, dlq.url, dlq.source, dlq.consumer) as box:
        return [x.id for x in await box.list(100)]


def section(page: str, index: int) -> str:
    found = re.search(
        rf'<section class="consumer" id="consumer-{index}">(.*?)</section>', page, re.S
    )
    assert found, page[:3000]
    return found.group(1)


def polled(page: str) -> str:
    """The URL the page polls for its listings, checked to be every 15 s."""
    found = re.search(
        r'<div id="consumers-live" hx-get="([^"]+)" hx-trigger="every 15(?:\.0)?s"', page
    )
    assert found, page[:3000]
    return html.unescape(found.group(1))


@pytest.fixture
async def origins() -> AsyncIterator[dict[str, tuple[str, ConsumerSource]]]:
    """Per broker: a fresh origin with two events dead-lettered by its consumer."""
    async with AsyncExitStack() as stack:
        made: dict[str, tuple[str, ConsumerSource]] = {}
        for broker in BROKERS:
            origin, sink = await stack.enter_async_context(broker_origin(broker))
            source = await open_source(broker, origin)
            stack.push_async_callback(source.close)
            events = [
                make_event("OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=f"o-{i}")
                for i in range(2)
            ]
            assert all(r.ok for r in await sink.publish(events))
            await dead_letter(source, 2)
            made[broker] = (origin, source)
        yield made


async def test_consumer_dead_letters_listed_replayed_and_refused_to_a_viewer(
    pg_dsn: str,
    origins: dict[str, tuple[str, ConsumerSource]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tether.dashboard.audit")
    dlqs = [consumer_of(b, origins[b][0]) for b in BROKERS]
    down = parse_consumer_dlqs(f"redis {DOWN} orders billing  # a broker that is down\n")
    async with capabilities(pg_dsn) as (authz, records):
        app = dashboard(pg_dsn, authz, consumer_dlqs=[*dlqs, *down])
        async with client(app) as c:
            await login(c, VIEWER)
            r = await c.get("/consumers")
            assert r.status_code == 200, r.text[:500]
            for i, dlq in enumerate(dlqs):
                part = section(r.text, i)
                ids = await letters(dlq)
                assert len(ids) == 2, (dlq.broker, ids)
                assert all(html.escape(x) in part for x in ids), (dlq.broker, part)
                assert "RuntimeError: ledger &lt;closed&gt;" in part
                assert "OrderPlaced" in part and "header" in part  # the original headers
                assert 'name="id"' not in part and "replay-all" not in part  # a viewer's page
            broken = section(r.text, 3)
            assert "broker-error" in broken and "127.0.0.1:1" in broken and "redis" in broken
            assert "s3cret" not in r.text and "ops:***@" in r.text
            form = {"csrf": csrf(r.text), "source": "0", "label": dlqs[0].label, "scope": "all"}
            for path in ("/consumers/confirm", "/consumers/run"):
                refused = await c.post(path, data=form)
                assert (
                    refused.status_code == 403 and "Missing capability: ops:replay" in refused.text
                )
            assert len(await letters(dlqs[0])) == 2

        async with client(app) as c:
            token = await login(c, OPERATOR)
            capped = await c.get("/consumers?limit=1")
            assert 'id="capped-0"' in capped.text and "the first 1 dead letters" in capped.text
            # The page refreshes its listings in place, with its limit; no faster than 15 s.
            assert polled(capped.text).endswith("/partials/consumers?limit=1")
            part = await c.get(polled(capped.text), headers={"hx-request": "true"})
            assert part.status_code == 200 and "<html" not in part.text
            assert 'id="capped-0"' in part.text and 'id="replay-all-0"' in part.text
            live = polled((await c.get("/consumers")).text)  # loaded before the replays
            assert (await c.get("/consumers?limit=0")).status_code == 400
            assert (await c.post("/consumers/confirm", data={"source": "0"})).status_code == 403

            # One dead letter of each broker, by id, through the confirmation.
            replayed = []
            for i, dlq in enumerate(dlqs):
                first = (await letters(dlq))[0]
                replayed.append(first)
                form = {"csrf": token, "source": str(i), "label": dlq.label, "scope": "selected"}
                shown = await c.post("/consumers/confirm", data={**form, "id": first})
                assert shown.status_code == 200 and '<strong id="count">1</strong>' in shown.text
                done = await c.post("/consumers/run", data={**form, "id": first})
                assert done.status_code == 303, done.text[:300]
                assert first not in await letters(dlq)
            page = await c.get("/consumers")
            assert "Replayed 1 dead letter of" in page.text
            # The page loaded before the replays shows them gone at its next refresh.
            now = (await c.get(live, headers={"hx-request": "true"})).text
            for i, dlq in enumerate(dlqs):
                shown = re.findall(r'<td class="dlq-id">([^<]*)</td>', section(now, i))
                assert [html.unescape(x) for x in shown] == await letters(dlq), dlq.broker
                assert replayed[i] not in shown

            # Replay all of the Redis consumer: the count, then every one back on its origin.
            form = {"csrf": token, "source": "0", "label": dlqs[0].label, "scope": "all"}
            shown = await c.post("/consumers/confirm", data=form)
            assert '<strong id="count">1</strong>' in shown.text and "Replay all" not in shown.text
            assert (await c.post("/consumers/run", data=form)).status_code == 303
            assert await letters(dlqs[0]) == []
            back = await origins["redis"][1].receive(10, 1.0)
            assert len(back) >= 2 and all(d.deliveries == 1 for d in back)

            # A broker that is down: an error page naming it, never a 500.
            form = {"csrf": token, "source": "3", "label": down[0].label, "scope": "all"}
            failed = await c.post("/consumers/confirm", data=form)
            assert failed.status_code == 503 and "127.0.0.1:1" in failed.text
            assert "s3cret" not in failed.text
            stale = {**form, "label": "redis other / billing"}
            assert (await c.post("/consumers/confirm", data=stale)).status_code == 400

    replays = [r for r in records if r.capability == "ops:replay"]
    assert [r.allowed for r in replays[:2]] == [False, False]  # the viewer's two refusals
    assert sum(r.allowed for r in replays) == 4  # three single replays and one replay-all
    runs = [
        r.dashboard_action  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "dashboard_action", {}).get("count") is not None
    ]
    assert [(a["broker"], a["count"]) for a in runs] == [
        ("redis", 1), ("nats", 1), ("rabbitmq", 1), ("redis", 1)
    ]  # fmt: skip
    assert all("s3cret" not in str(a) for a in runs)


def test_the_consumer_file_names_its_bad_lines() -> None:
    from tether.core.errors import ConfigError

    with pytest.raises(ConfigError, match="line 2: expected '<broker> <url> <source> <consumer>'"):
        parse_consumer_dlqs("# comment\nredis redis://x orders\n")
    with pytest.raises(ConfigError, match="line 1: broker 'kafka': use one of nats, rabbitmq"):
        parse_consumer_dlqs("kafka kafka://x orders billing\n")
    with pytest.raises(ConfigError, match="listed twice"):
        from tether.dashboard import DashboardSettings

        twice = parse_consumer_dlqs("redis redis://a s c\nredis redis://a s c\n")
        DashboardSettings("postgresql://x", "s" * 40, consumer_dlqs=twice)
