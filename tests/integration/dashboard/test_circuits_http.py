"""Webhook endpoints' live circuits over HTTP: read from the Redis the dispatchers share, under
the dispatcher's own breaker names; reset by an operator (CSRF, audited), refused to a viewer;
the table's state, said so, without a store or while Redis is down."""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.dashboard.support import OPERATOR, VIEWER, capabilities, dashboard
from tests.integration.dashboard.test_http import client, csrf, login
from tether.guard import CircuitOpen
from tether.guard.redis_store import RedisBreakerStore
from tether.webhooks.dispatcher import Dispatcher

pytestmark = pytest.mark.postgres


async def endpoints(pool: asyncpg.Pool, n: int) -> list[uuid.UUID]:
    """``n`` endpoints (test data written directly; endpoints are tested with webhooks)."""
    ids = [uuid.UUID(int=i + 1) for i in range(n)]
    await pool.executemany(
        "INSERT INTO tether_webhook_endpoints (id, tenant_id, url, filters, secrets, created_at, "
        "updated_at) VALUES ($1, 'acme', $2, '{*}', '[]', now(), now())",
        [(i, f"https://hooks.example/{i.int}") for i in ids],
    )
    return ids


def cell(html: str, endpoint: uuid.UUID) -> str:
    """The circuit cell of an endpoint's row on the list page."""
    row = re.search(rf'href="[^"]*/webhooks/{endpoint}">.*?</tr>', html, re.S)
    assert row, html[:2000]
    found = re.search(r'<td class="circuit">(.*?)</td>', row.group(0), re.S)
    assert found, row.group(0)
    return " ".join(found.group(1).split())


@pytest.fixture
async def shared(redis_url: str) -> AsyncIterator[RedisBreakerStore]:
    client_ = aioredis.from_url(redis_url)
    prefix = f"tether:test-dash-guard:{uuid.uuid4().hex}:"
    try:
        yield RedisBreakerStore(client_, prefix=prefix, timeout_s=5)
    finally:
        for key in await client_.keys(prefix + "*"):
            await client_.delete(key)
        await client_.aclose()


async def test_live_circuits_shown_and_reset_by_an_operator_only(
    pg_dsn: str, shared: RedisBreakerStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.dashboard.audit")
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    dispatcher = Dispatcher(pool, breaker_store=shared)
    try:
        opened, failing, quiet = await endpoints(pool, 3)
        # The dispatcher's own guards, under its breaker names, in the shared store.
        breaker = dispatcher._guard(opened)
        for _ in range(5):  # the default policy opens after 5 failures in a minute
            await breaker.record_failure()
        for _ in range(2):
            await dispatcher._guard(failing).record_failure()
        async with capabilities(pg_dsn) as (authz, records):
            app = dashboard(pg_dsn, authz, breaker_store=shared)
            async with client(app) as c:
                await login(c, VIEWER)
                page = (await c.get("/webhooks")).text
                assert "live from the breaker store" in page and shared.where in page
                assert cell(page, opened).startswith('<span class="badge circuit-open"')
                assert "until 20" in cell(page, opened)  # the open period's end, a UTC time
                assert "closed" in cell(page, failing) and "2 recent failures" in cell(
                    page, failing
                )
                assert "closed" in cell(page, quiet) and "failure" not in cell(page, quiet)
                mine = await c.get(f"/webhooks/{opened}")
                assert "circuit-open" in mine.text and 'id="reset"' not in mine.text
                token = csrf(mine.text)
                refused = await c.post(f"/webhooks/{opened}/circuit/reset", data={"csrf": token})
                assert (
                    refused.status_code == 403 and "Missing capability: ops:replay" in refused.text
                )
                stored = (await shared.records([f"webhook:{opened}"]))[f"webhook:{opened}"]
                assert stored is not None and stored.state == "open"
                with pytest.raises(CircuitOpen):
                    await breaker.before()  # still open for the dispatchers
            async with client(app) as c:
                await login(c, OPERATOR)
                mine = await c.get(f"/webhooks/{opened}")
                assert 'id="reset"' in mine.text
                form = {"csrf": csrf(mine.text)}
                path = f"/webhooks/{opened}/circuit/reset"
                assert (await c.post(path, data={"csrf": "x" * 43})).status_code == 403
                evil = await c.post(path, data=form, headers={"origin": "http://evil.test"})
                assert evil.status_code == 403
                done = await c.post(path, data=form)
                assert done.status_code == 303 and done.headers["location"].endswith(str(opened))
                after = await c.get(f"/webhooks/{opened}")
                assert "Circuit reset" in after.text and "circuit-closed" in after.text
                assert 'id="reset"' not in after.text
            await breaker.before()  # every dispatcher sees it closed again
            resets = [r for r in records if r.capability == "ops:replay"]
            assert [r.allowed for r in resets] == [False, True]  # the viewer's, the operator's
            assert all(r.correlation_id.startswith("dashboard-") for r in resets)
            audit = [r for r in caplog.records if hasattr(r, "dashboard_action")]
            assert any(
                a.dashboard_action["action"] == "reset-circuit"  # type: ignore[attr-defined]
                and a.dashboard_action.get("count") == 1  # type: ignore[attr-defined]
                for a in audit
            )
            await app.state.dashboard.db.close()

            # Without a shared store: the table's state, and the page says where it comes from.
            plain = dashboard(pg_dsn, authz)
            async with client(plain) as c:
                await login(c, OPERATOR)
                page = (await c.get("/webhooks")).text
                assert "as the delivery history records it" in page
                assert "healthy" in cell(page, opened) and "badge" not in cell(page, opened)
                mine = await c.get(f"/webhooks/{opened}")
                assert 'id="reset"' not in mine.text
            await plain.state.dashboard.db.close()

            # Redis down: an error box naming the store, the table's state, never a 500.
            down_client = aioredis.from_url("redis://:s3cret@127.0.0.1:1/0")
            down = RedisBreakerStore(down_client, timeout_s=1)
            broken = dashboard(pg_dsn, authz, breaker_store=down)
            async with client(broken) as c:
                await login(c, OPERATOR)
                for path in ("/webhooks", f"/webhooks/{opened}"):
                    r = await c.get(path)
                    assert r.status_code == 200, r.text[:300]
                    assert 'id="circuit-error"' in r.text and "127.0.0.1:1" in r.text
                    assert "s3cret" not in r.text and "healthy" in r.text
            await broken.state.dashboard.db.close()
            await down_client.aclose()
    finally:
        await dispatcher.close()
        await pool.close()


def test_a_store_that_cannot_be_read_from_outside_is_refused() -> None:
    from tether.core.errors import ConfigError
    from tether.dashboard import DashboardSettings

    with pytest.raises(ConfigError, match="breaker_store: object cannot be read from outside"):
        DashboardSettings("postgresql://x", "s" * 40, breaker_store=object())


def polled(page: str, box: str) -> str:
    """The URL the page's live part ``box`` polls (every refresh_seconds, 1 s here)."""
    found = re.search(rf'<div id="{box}" hx-get="([^"]+)" hx-trigger="every 1(?:\.0)?s"', page)
    assert found, page[:3000]
    return html.unescape(found.group(1))


def older(page: str) -> str:
    found = re.search(r'<a href="([^"]+)">(?:Next|Older) →</a>', page)
    assert found, page[-2000:]
    return html.unescape(found.group(1))


async def test_webhook_pages_refresh_their_circuits_and_log_on_their_keyset_page(
    pg_dsn: str, shared: RedisBreakerStore
) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    dispatcher = Dispatcher(pool, breaker_store=shared)
    try:
        ids = await endpoints(pool, 3)
        # Three attempts a minute apart on the first endpoint: two log pages of two.
        await pool.executemany(
            "INSERT INTO tether_webhook_attempts (delivery_id, endpoint_id, tenant_id, event_id, "
            "attempt, at, outcome, status_code, latency_ms) VALUES (gen_random_uuid(), $1, "
            "'acme', gen_random_uuid(), 1, now() - make_interval(mins => $2), 'ok', $3, 12)",
            [(ids[0], n, 200 + n) for n in range(3)],
        )
        async with capabilities(pg_dsn) as (authz, _):
            app = dashboard(pg_dsn, authz, breaker_store=shared, page_size=2)
            async with client(app) as c:
                unlogged = await c.get("/partials/webhooks", headers={"hx-request": "true"})
                assert unlogged.status_code == 401  # htmx polls after the session ended
                await login(c, VIEWER)
                first = (await c.get("/webhooks")).text
                assert polled(first, "endpoints-live").endswith("/partials/webhooks")
                # The next page polls its own cursor: its rows, not the first page's.
                second = (await c.get(older(first))).text
                url = polled(second, "endpoints-live")
                assert "after_cursor=" in url
                part = await c.get(url, headers={"hx-request": "true"})
                assert part.status_code == 200 and "<html" not in part.text
                on_first = {i for i in ids if f"/webhooks/{i}" in first}
                (target,) = [i for i in ids if f"/webhooks/{i}" in part.text]
                assert len(on_first) == 2 and target not in on_first
                # A circuit that opens after the page loaded shows at the next poll.
                assert "circuit-open" not in cell(part.text, target)
                for _ in range(5):
                    await dispatcher._guard(target).record_failure()
                again = (await c.get(url, headers={"hx-request": "true"})).text
                assert cell(again, target).startswith('<span class="badge circuit-open"')

                # The endpoint's page: its circuit and log refresh, on the log page shown.
                page = (await c.get(f"/webhooks/{ids[0]}")).text
                assert polled(page, "endpoint-live").endswith(f"/partials/webhooks/{ids[0]}")
                assert "circuit-open" not in page
                for _ in range(5):
                    await dispatcher._guard(ids[0]).record_failure()
                live = (await c.get(polled(page, "endpoint-live"))).text
                assert "<html" not in live and 'id="circuit"' in live and "circuit-open" in live
                assert (
                    "<td>200</td>" in live and "<td>201</td>" in live and "<td>202</td>" not in live
                )
                log_page = (await c.get(older(page))).text
                url = polled(log_page, "endpoint-live")
                assert "before=" in url
                older_part = (await c.get(url)).text
                assert "<td>202</td>" in older_part and "<td>200</td>" not in older_part
            await app.state.dashboard.db.close()
    finally:
        await dispatcher.close()
        await pool.close()
