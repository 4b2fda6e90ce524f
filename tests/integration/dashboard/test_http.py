"""The dashboard over HTTP (no browser): login, capabilities, CSRF, filters, bulk actions
with their count and confirmation, and every page rendering on a real database."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.dashboard.support import (
    OPERATOR,
    OUTSIDER,
    VIEWER,
    capabilities,
    dashboard,
)

pytestmark = pytest.mark.postgres


async def dead_outbox(pool: asyncpg.Pool, n: int, **fields: Any) -> list[uuid.UUID]:
    """``n`` dead outbox events (test data written directly: the relay's own dead-lettering
    is tested with the relay)."""
    ids = [uuid.uuid4() for _ in range(n)]
    await pool.executemany(
        "INSERT INTO tether_outbox (id, state, attempts, topic, type, tenant_id, payload, "
        "last_error, errors, finished_at) VALUES ($1, 'dead', 3, $2, $3, $4, '{\"n\": 1}', $5, "
        "jsonb_build_array(jsonb_build_object('at', now(), 'attempt', 1, 'error', 'first: ' || $5),"
        " jsonb_build_object('at', now(), 'attempt', 3, 'error', $5)), now())",
        [
            (i, fields.get("topic", "orders"), fields.get("type", "OrderPlaced"),
             fields.get("tenant", "acme"), fields.get("error", "broker said no"))
            for i in ids
        ],
    )  # fmt: skip
    return ids


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def site(pg_dsn: str) -> AsyncIterator[tuple[Any, list[Any]]]:
    async with capabilities(pg_dsn) as (authz, records):
        app = dashboard(pg_dsn, authz)
        try:
            yield app, records
        finally:
            await app.state.dashboard.db.close()


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash.test")


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def login(c: httpx.AsyncClient, token: str) -> str:
    page = await c.get("/login")
    r = await c.post("/login", data={"token": token, "csrf": csrf(page.text)})
    assert r.status_code == 303, r.text
    home = await c.get("/")
    return csrf(home.text)


async def pages_need_a_login_and_ops_view(site: tuple[Any, list[Any]]) -> None:
    app, _ = site
    async with client(app) as c:
        r = await c.get("/dead")
        assert r.status_code == 303 and r.headers["location"].endswith("/login")
        page = await c.get("/login")
        bad = await c.post("/login", data={"token": "x" * 30, "csrf": csrf(page.text)})
        assert bad.status_code == 401 and "Unknown token" in bad.text
        forged = await c.post("/login", data={"token": VIEWER, "csrf": "forged"})
        assert forged.status_code == 403
        await login(c, OUTSIDER)
        refused = await c.get("/dead")
        assert refused.status_code == 403 and "Missing capability: ops:view" in refused.text
        assert (await c.get("/api/series")).status_code == 403


async def every_page_renders_for_a_viewer_without_action_buttons(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    app, _ = site
    (first,) = await dead_outbox(pool, 1)
    (hostile,) = await dead_outbox(pool, 1, type="<b>T</b>", error="<script>alert(1)</script>")
    async with client(app) as c:
        await login(c, VIEWER)
        for page in (await c.get("/dead"), await c.get(f"/dead/outbox/{hostile}")):
            assert "<script>alert(1)" not in page.text and "<b>T</b>" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        for path in ("/", "/partials/overview", "/dead", "/dead?kind=jobs", "/dead?kind=deliveries",
                     "/partials/dead?kind=outbox", f"/dead/outbox/{first}", "/webhooks", "/jobs",
                     "/realtime", "/api/series"):  # fmt: skip
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text[:300])
        page = await c.get(f"/dead/outbox/{first}")
        assert "broker said no" in page.text and "first: broker said no" in page.text
        assert 'id="replay"' not in page.text and 'id="purge"' not in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        listing = await c.get("/dead")
        assert "replay-selected" not in listing.text and "purge-all" not in listing.text


async def a_viewer_is_refused_by_the_action_endpoints_and_it_is_logged(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    app, records = site
    (first,) = await dead_outbox(pool, 1)
    async with client(app) as c:
        token = await login(c, VIEWER)
        form = {"csrf": token, "action": "replay", "scope": "selected", "id": str(first),
                "kind": "outbox", "shown_at": "2030-01-01T00:00:00+00:00"}  # fmt: skip
        for path in ("/actions/confirm", "/actions/run"):
            r = await c.post(path, data=form)
            assert r.status_code == 403 and "Missing capability: ops:replay" in r.text
    assert await pool.fetchval("SELECT state FROM tether_outbox WHERE id = $1", first) == "dead"
    refused = [r for r in records if r.capability == "ops:replay"]
    assert len(refused) == 2  # the confirmation and the action; showing pages logs none
    assert all(not r.allowed and r.user == "vera" for r in refused)
    assert all(r.correlation_id and r.correlation_id.startswith("dashboard-") for r in refused)


async def actions_need_the_session_csrf_token_and_this_origin(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    app, _ = site
    (first,) = await dead_outbox(pool, 1)
    async with client(app) as c:
        token = await login(c, OPERATOR)
        form = {"action": "purge", "scope": "selected", "id": str(first), "kind": "outbox"}
        assert (await c.post("/actions/confirm", data=form)).status_code == 403
        assert (
            await c.post("/actions/confirm", data={**form, "csrf": "x" * 43})
        ).status_code == 403
        evil = {"origin": "http://evil.test"}
        r = await c.post("/actions/confirm", data={**form, "csrf": token}, headers=evil)
        assert r.status_code == 403
        assert (await c.get("/actions/confirm")).status_code == 405  # POST only
    assert await pool.fetchval("SELECT state FROM tether_outbox WHERE id = $1", first) == "dead"


async def bad_filters_are_named(site: tuple[Any, list[Any]]) -> None:
    app, _ = site
    async with client(app) as c:
        await login(c, VIEWER)
        cases = {
            "/dead?kind=nope": "kind: unknown kind",
            "/dead?kind=jobs&tenant=acme": "tenant: jobs cannot be filtered by tenant",
            "/dead?kind=deliveries&endpoint=12": "endpoint: &#39;12&#39; is not a UUID",
            "/dead?after=yesterday": "after: &#39;yesterday&#39; is neither",
            "/dead?after=1h&before=2h": "after: must be earlier than before",
            "/dead?error=" + "x" * 201: "error: at most 200 characters",
            "/dead?after_cursor=zzz": "after_cursor: not a cursor",
            "/dead/outbox/not-a-uuid": "id: &#39;not-a-uuid&#39; is not a UUID",
            "/webhooks?after_cursor=a|2026-01-01T00:00|x": "after_cursor: not a cursor",
            "/webhooks/00000000-0000-4000-8000-00000000e001?before=2026": "before: not a cursor",
        }
        for path, message in cases.items():
            r = await c.get(path)
            assert r.status_code == 400 and message in r.text, (path, r.text[-600:])


async def filter_keyset_pages_and_bulk_purge_with_count_and_confirmation(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    app, records = site
    acme = await dead_outbox(pool, 60, tenant="acme", error="timeout talking to broker")
    other = await dead_outbox(pool, 5, tenant="globex", error="timeout talking to broker")
    await dead_outbox(pool, 3, tenant="acme", error="schema mismatch", type="InvoiceSent")
    async with client(app) as c:
        token = await login(c, OPERATOR)
        query = "kind=outbox&tenant=acme&error=timeout"
        seen: list[str] = []
        path = f"/dead?{query}"
        for _ in range(5):
            page = await c.get(path)
            assert page.status_code == 200
            seen += re.findall(r'class="dead-row" data-id="([^"]+)"', page.text)
            more = re.search(r'href="([^"]+)" id="next"', page.text)
            if not more:
                break
            path = more.group(1).replace("&amp;", "&")
        assert len(seen) == 60 and set(seen) == {str(i) for i in acme}  # 50 + 10, no repeats
        form = {"csrf": token, "do": "purge:filter", "kind": "outbox", "tenant": "acme",
                "error": "timeout"}  # fmt: skip
        confirm = await c.post("/actions/confirm", data=form)
        assert confirm.status_code == 200 and 'id="count">60<' in confirm.text
        shown_at = re.search(r'name="shown_at" value="([^"]+)"', confirm.text)
        assert shown_at
        done = await c.post(
            "/actions/run",
            data={"csrf": token, "action": "purge", "scope": "filter", "kind": "outbox",
                  "tenant": "acme", "error": "timeout", "shown_at": shown_at.group(1)},
        )  # fmt: skip
        assert done.status_code == 303
        after = await c.get(done.headers["location"])
        assert "Purged 60 dead letters." in after.text
    left = await pool.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'dead'")
    assert left == 8
    assert await pool.fetchval("SELECT count(*) FROM tether_outbox WHERE id = ANY($1)", other) == 5
    # The log keeps denials only, yet the action's allowed decision is in it.
    (record,) = records
    assert (record.user, record.capability, record.allowed) == ("otto", "ops:purge", True)
    assert record.correlation_id and record.correlation_id.startswith("dashboard-")


async def a_confirmed_action_is_bounded_to_what_the_page_counted(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    app, _ = site
    await dead_outbox(pool, 2)
    async with client(app) as c:
        token = await login(c, OPERATOR)
        confirm = await c.post(
            "/actions/confirm", data={"csrf": token, "do": "replay:filter", "kind": "outbox"}
        )
        assert 'id="count">2<' in confirm.text
        shown_at = re.search(r'name="shown_at" value="([^"]+)"', confirm.text)
        assert shown_at
        await dead_outbox(pool, 3)  # dead-lettered after the operator saw the count
        done = await c.post(
            "/actions/run",
            data={"csrf": token, "action": "replay", "scope": "filter", "kind": "outbox",
                  "shown_at": shown_at.group(1)},
        )  # fmt: skip
        assert done.status_code == 303
    assert await pool.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'pending'") == 2
    assert await pool.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'dead'") == 3


async def realtime_page_shows_an_in_process_gateway(site: tuple[Any, list[Any]]) -> None:
    from tether.realtime import Gateway, JwtVerifier

    app, _ = site
    gateway = Gateway(JwtVerifier("k" * 32))
    authz = app.state.dashboard.guard.authz
    with_gateway = dashboard(app.state.dashboard.settings.dsn, authz, gateway=gateway)
    async with client(with_gateway) as c:
        await login(c, VIEWER)
        page = await c.get("/realtime")
        assert page.status_code == 200 and 'id="rt-summary">0 connections of 0 users' in page.text
    async with client(app) as c:
        await login(c, VIEWER)
        assert 'id="no-gateway"' in (await c.get("/realtime")).text


async def login_attempts_are_throttled_per_client(site: tuple[Any, list[Any]]) -> None:
    app, _ = site
    async with client(app) as c:
        token = csrf((await c.get("/login")).text)
        statuses = []
        for _ in range(12):
            r = await c.post("/login", data={"token": "w" * 30, "csrf": token})
            statuses.append(r.status_code)
        assert statuses[-1] == 429 and set(statuses) == {401, 429}, statuses
        assert "Too many login attempts" in r.text and int(r.headers["retry-after"]) > 0
        right = await c.post("/login", data={"token": OPERATOR, "csrf": token})
        assert right.status_code == 429  # the right token waits too: no oracle


# One database per test function: each runs several checks (a database and a capability store
# take seconds to set up on a loaded machine).
async def test_login_capabilities_csrf_pages_and_filters(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    await pages_need_a_login_and_ops_view(site)
    await every_page_renders_for_a_viewer_without_action_buttons(site, pool)
    await a_viewer_is_refused_by_the_action_endpoints_and_it_is_logged(site, pool)
    await actions_need_the_session_csrf_token_and_this_origin(site, pool)
    await bad_filters_are_named(site)
    await realtime_page_shows_an_in_process_gateway(site)


async def test_bulk_actions_count_confirm_and_stay_bounded(
    site: tuple[Any, list[Any]], pool: asyncpg.Pool
) -> None:
    await filter_keyset_pages_and_bulk_purge_with_count_and_confirmation(site, pool)
    await pool.execute("TRUNCATE tether_outbox")
    await a_confirmed_action_is_bounded_to_what_the_page_counted(site, pool)
    await login_attempts_are_throttled_per_client(site)
