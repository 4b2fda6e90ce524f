"""The overview's runners table, its history chart and the realtime page's gateways, over HTTP
on a real database: runners register and beat through the PostgreSQL registry (a frozen clock
places their beats in time)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.dashboard.support import VIEWER, capabilities, dashboard
from tests.integration.dashboard.test_http import client, login
from tether.core.clock import FrozenClock
from tether.ops.runners import PostgresRunnerRegistry

pytestmark = pytest.mark.postgres


def row_of(html: str, name: str) -> str:
    found = re.search(rf'<tr class="runner[^"]*"[^>]*data-name="{name}".*?</tr>', html, re.S)
    assert found, f"no row for {name} in: {html[:3000]}"
    return found.group(0)


@pytest.fixture
async def registry(pg_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, FrozenClock]]:
    """Runners written through the registry with a clock 20 s behind, that tests move on."""
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    clock = FrozenClock(datetime.now(UTC) - timedelta(seconds=20))
    try:
        yield pool, clock
    finally:
        await pool.close()


async def seed(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    start = clock.now()
    reg = PostgresRunnerRegistry(pool, clock=clock)
    # Lost: its last beat is two hours old (a killed process); stopped: a clean exit.
    clock.set(start - timedelta(hours=2))
    await reg.register("webhook-dispatcher", "gone-dispatcher", 10, {"delivered_total": 7})
    clock.set(start)
    consumer = await reg.register("consumer", "billing-consumer", 10, {"handled_total": 0})
    await reg.stop(consumer, {"handled_total": 12})
    relay = await reg.register("relay", "relay-a", 10, {"published_total": 0, "lag_s": 0})
    # Idle: it holds no job, yet it beats.
    idle = await reg.register("job-worker", "idle-worker", 10, {"done_total": 0, "in_flight": 0})
    gateway = await reg.register(
        "realtime-gateway", "gw-1", 10,
        {"connections": 3, "channels": 2, "messages_total": 0, "disconnects_total": 0},
    )  # fmt: skip
    for step in (1, 2):
        clock.advance(10)
        await reg.beat(relay, {"published_total": 500 * step, "dead_total": step, "lag_s": 1.5})
        await reg.beat(idle, {"done_total": 0, "in_flight": 0})
        await reg.beat(
            gateway,
            {"connections": 3, "channels": 2, "messages_total": 100 * step, "disconnects_total": 1},
        )


async def test_runners_table_history_chart_and_gateways(
    pg_dsn: str, registry: tuple[asyncpg.Pool, FrozenClock]
) -> None:
    pool, clock = registry
    await seed(pool, clock)
    async with capabilities(pg_dsn) as (authz, _):
        app = dashboard(pg_dsn, authz)
        try:
            async with client(app) as c:
                await login(c, VIEWER)
                await overview_lists_every_runner_with_its_status(c)
                await chart_data_comes_from_the_stored_history(c)
                await realtime_page_lists_gateways_from_the_registry(c)
        finally:
            await app.state.dashboard.db.close()


async def overview_lists_every_runner_with_its_status(c: Any) -> None:
    for path in ("/", "/partials/overview"):
        page = (await c.get(path)).text
        lost = row_of(page, "gone-dispatcher")
        assert 'data-status="lost"' in lost and "badge status-lost" in lost
        assert 'class="runner runner-lost"' in lost  # the row itself stands out
        idle = row_of(page, "idle-worker")
        assert 'data-status="alive"' in idle and "in flight <b>0</b>" in idle
        assert 'data-status="stopped"' in row_of(page, "billing-consumer")
        relay = row_of(page, "relay-a")
        assert "published <b>1,000</b>" in relay and "lag <b>1.5 s</b>" in relay
        # Lost runners are listed first.
        assert page.index('data-name="gone-dispatcher"') < page.index('data-name="relay-a"')
    home = (await c.get("/?range=6h")).text
    assert 'aria-current="page">6h</a>' in home and "/api/series?range=6h" in home


async def chart_data_comes_from_the_stored_history(c: Any) -> None:
    r = await c.get("/api/series", params={"range": "1h"})
    assert r.status_code == 200
    data = r.json()
    assert data["bucket_s"] == 30 and 120 <= len(data["x"]) <= 122
    published = [v for v in data["series"]["events published/s"] if v is not None]
    assert published and sum(published) * 30 == pytest.approx(1000, abs=1)
    assert max(v or 0 for v in data["series"]["relay lag s"]) == 1.5
    # A counter's first report is its base: dead_total went 1 → 2.
    assert sum(v or 0 for v in data["series"]["dead/s"]) * 30 == pytest.approx(1, abs=0.01)
    assert all(v is None for v in data["series"]["deliveries/s"])  # the lost one's is too old
    again = (await c.get("/api/series", params={"range": "1h"})).json()  # from the cache
    assert again["series"]["events published/s"] == data["series"]["events published/s"]
    day = (await c.get("/api/series", params={"range": "24h"})).json()
    assert day["bucket_s"] == 600 and sum(v or 0 for v in day["series"]["deliveries/s"]) == 0
    day_published = [v for v in day["series"]["events published/s"] if v is not None]
    assert day_published and sum(day_published) * 600 == pytest.approx(1000, abs=1)
    bad = await c.get("/api/series", params={"range": "7d"})
    assert bad.status_code == 400 and "range: use one of 1h, 6h, 24h" in bad.text


async def realtime_page_lists_gateways_from_the_registry(c: Any) -> None:
    page = (await c.get("/realtime")).text
    gateway = row_of(page, "gw-1")
    assert 'data-status="alive"' in gateway
    assert '<td class="connections">3</td>' in gateway and '<td class="channels">2</td>' in gateway
    assert '<td class="rate">10.0</td>' in gateway  # 100 messages between beats 10 s apart
    assert '<td class="disconnects">1</td>' in gateway
    assert 'id="no-gateway"' in page  # none runs in this process
