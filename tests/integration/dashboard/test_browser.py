"""The dead-letter flow in headless Chromium (Debian's chromium, driven by Playwright).

A webhook delivery goes dead for real (the receiver answers 500 and the sink allows one
attempt). A viewer finds it by filter, reads its errors and cannot act: no button, and the
action endpoint refuses. An operator replays it through the confirmation page, and the page
shows it delivered without a reload while the dispatcher runs. Screenshots are taken and their
pixels checked (the state's colour), not only that a page loaded.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.integration.dashboard.support import (
    COLOUR_SHARE_JS,
    OPERATOR,
    VIEWER,
    capabilities,
    dashboard,
    serving,
)
from tests.integration.webhooks.conftest import LOOPBACK
from tests.integration.webhooks.receiver import Receiver, Reply, Request
from tether.core.clock import FrozenClock
from tether.ops.runners import PostgresRunnerRegistry
from tether.outbox import add_event
from tether.outbox.relay import Relay
from tether.outbox.store_pg import PostgresOutboxStore
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings
from tether.webhooks.secret_box import SecretBox
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
expect.set_options(timeout=10_000)  # a loaded CI machine: waits are bounded, not tight
GREEN = (27, 127, 59)  # .state-done
RED = (198, 40, 40)  # .state-dead


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/install"
    async with async_playwright() as p:
        # A persistent context gets its own fresh --user-data-dir; contexts then share it,
        # so each user gets a separate browser (separate cookies) from the same binary.
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def dead_delivery(dsn: str, pool: asyncpg.Pool, rx: Receiver, store: EndpointStore) -> None:
    """Three deliveries made dead by the dispatcher itself: the receiver answers 500."""
    ep = await store.create("acme", EndpointSettings(rx.url(), filters=["*"]))
    rx.secrets.append(str(ep.secrets.current))
    globex = await store.create("globex", EndpointSettings(rx.url(), filters=["*"]))
    rx.secrets.append(str(globex.secrets.current))
    async with pool.acquire() as conn, conn.transaction():
        await add_event(conn, "OrderPlaced", {"order": 1}, tenant_id="acme")
        await add_event(conn, "OrderPlaced", {"order": 2}, tenant_id="globex")
        await add_event(conn, "InvoiceSent", {"invoice": 3}, tenant_id="acme")
    outbox = await PostgresOutboxStore.connect(dsn)
    try:
        relay = Relay(outbox, [WebhooksSink(max_attempts=1)])
        while (await relay.run_once()).claimed:
            pass
    finally:
        await outbox.close()
    d = Dispatcher(pool, config=DispatcherConfig(breaker=None), ssrf=LOOPBACK, box=store.box)
    try:
        async with asyncio.timeout(20):
            while await pool.fetchval(
                "SELECT count(*) FROM tether_webhook_deliveries WHERE state <> 'dead'"
            ):
                await d.run_once()
                await d.drain()
                await asyncio.sleep(0.05)
    finally:
        await d.close()


async def login(browser: Browser, base: str, token: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{base}/login")
    await page.fill("input[name=token]", token)
    await page.click("#login button[type=submit]")
    await expect(page.locator("#counts")).to_be_visible()
    return page


async def find_by_filter(page: Page, base: str) -> None:
    """Dead letters → webhook deliveries, filtered by type, tenant and error text."""
    await page.click("text=Dead letters")
    await page.select_option("select[name=kind]", "deliveries")
    await page.click("#apply")
    await expect(page.locator(".dead-row")).to_have_count(3)
    await page.fill("input[name=type]", "OrderPlaced")
    await page.fill("input[name=tenant]", "acme")
    await page.fill("input[name=error]", "HTTP 500")
    await page.click("#apply")
    await expect(page.locator(".dead-row")).to_have_count(1)
    await page.click(".dead-row a")
    await expect(page.locator("#state")).to_have_text("dead")
    await expect(page.locator("#errors")).to_contain_text("HTTP 500")
    await expect(page.locator("#attempts")).to_contain_text("shard 7 is read-only")


async def shot_of(page: Page, selector: str) -> bytes:
    """A screenshot of the page clipped to one element (htmx may swap the element itself
    while an element screenshot waits for it to be stable)."""
    for _ in range(20):  # bounded: a swap lasts milliseconds, the refresh is every second
        box = await page.locator(selector).bounding_box(timeout=2_000)
        if box is not None and box["width"] > 0:
            return await page.screenshot(clip=box)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{selector} never had a box")


async def colour_shares(page: Page, png: bytes, *colours: tuple[int, int, int]) -> Any:
    b64 = base64.b64encode(png).decode()
    return await page.evaluate(COLOUR_SHARE_JS, [b64, [list(c) for c in colours], 40])


async def runners_and_chart(page: Page, base: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    """The overview lists a beating relay as alive (green badge) and one that stopped beating
    long ago as lost (red badge), and draws the chart from the registry's history."""
    clock = FrozenClock(datetime.now(UTC))
    registry = PostgresRunnerRegistry(pool, clock=clock)
    start = clock.now()
    clock.set(start - timedelta(hours=2))
    await registry.register("job-worker", "worker-gone", 10, {"done_total": 0})
    clock.set(start - timedelta(seconds=20))
    relay = await registry.register("relay", "relay-live", 10, {"published_total": 0})
    clock.set(start)
    await registry.beat(relay, {"published_total": 600, "lag_s": 0.4})
    await page.goto(base + "/")
    live = page.locator("#runners tr[data-name=relay-live] .badge")
    gone = page.locator("#runners tr[data-name=worker-gone] .badge")
    await expect(live).to_have_text("alive")
    await expect(gone).to_have_text("lost")
    await expect(page.locator("#chart canvas")).to_have_count(1, timeout=10_000)
    await expect(page.locator("#chart")).not_to_have_attribute("data-points", "0")
    await page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    seen = await colour_shares(
        page, await shot_of(page, "#runners tr[data-name=relay-live] .badge"), GREEN, RED
    )
    assert seen["shares"][0] > 0.02 and seen["shares"][1] == 0, seen
    seen = await colour_shares(
        page, await shot_of(page, "#runners tr[data-name=worker-gone] .badge"), GREEN, RED
    )
    assert seen["shares"][1] > 0.02 and seen["shares"][0] == 0, seen
    chart = await shot_of(page, "#chart canvas")
    assert len(chart) > 5_000  # a drawn plot, not an empty box
    assert page.errors == []  # type: ignore[attr-defined]


async def test_viewer_reads_and_operator_replays_a_dead_webhook_delivery(
    pg_dsn: str, browser: Browser, tmp_path: Path
) -> None:
    healthy = False

    def respond(_: Request) -> Reply:
        if healthy:
            return Reply(200, body=b"thanks")
        return Reply(500, body=b"database error: shard 7 is read-only")

    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=6)
    rx = Receiver(respond=respond)
    await rx.start()
    store = EndpointStore(pool, ssrf=LOOPBACK, box=SecretBox(SecretBox.generate_key()))
    stop = asyncio.Event()
    try:
        await dead_delivery(pg_dsn, pool, rx, store)
        async with (
            capabilities(pg_dsn) as (authz, records),
            serving(dashboard(pg_dsn, authz)) as base,
        ):
            # The viewer: finds it, reads the error, has no button, and is refused.
            viewer = await login(browser, base, VIEWER)
            await expect(
                viewer.locator("tr[data-table=tether_webhook_deliveries] .dead")
            ).to_have_text("3")
            await find_by_filter(viewer, base)
            assert await viewer.locator("#replay, #purge").count() == 0
            shot = await viewer.screenshot(path=str(tmp_path / "viewer-item.png"), full_page=True)
            state = await shot_of(viewer, "#state")
            seen = await colour_shares(viewer, state, RED, GREEN)
            assert seen["shares"][0] > 0.02 and seen["shares"][1] == 0, seen
            assert len(shot) > 10_000
            delivery_id = viewer.url.rsplit("/", 1)[1]
            csrf = await viewer.locator("input[name=csrf]").first.get_attribute("value")
            refused = await viewer.request.post(
                f"{base}/actions/run",
                form={"csrf": csrf or "", "action": "replay", "scope": "selected",
                      "kind": "deliveries", "id": delivery_id,
                      "shown_at": "2026-01-01T00:00:00+00:00"},
            )  # fmt: skip
            assert refused.status == 403
            assert "Missing capability: ops:replay" in await refused.text()

            # The operator: the same search, replay, confirmation, delivered live.
            healthy = True
            dispatcher = Dispatcher(
                pool, config=DispatcherConfig(breaker=None, idle_poll_interval=0.1),
                ssrf=LOOPBACK, box=store.box,
            )  # fmt: skip
            running = asyncio.create_task(dispatcher.run(stop))
            try:
                operator = await login(browser, base, OPERATOR)
                await find_by_filter(operator, base)
                await operator.click("#replay")
                await expect(operator.locator("#count")).to_have_text("1")
                await operator.click("#confirm")
                await expect(operator.locator("#flash")).to_have_text("Replayed 1 dead letter.")
                await expect(operator.locator("#state")).to_have_text("done", timeout=15_000)
                await expect(operator.locator("#attempts")).to_contain_text("thanks")
                await operator.screenshot(path=str(tmp_path / "operator-done.png"), full_page=True)
                state = await shot_of(operator, "#state")
                seen = await colour_shares(operator, state, RED, GREEN)
                assert seen["shares"][1] > 0.02 and seen["shares"][0] == 0, seen
            finally:
                stop.set()
                async with asyncio.timeout(10):
                    await running
                await dispatcher.close()
            assert [r.json["data"] for r in rx.verified] == [{"order": 1}]
            assert viewer.errors == [] and operator.errors == []  # type: ignore[attr-defined]
            await runners_and_chart(operator, base, pool, tmp_path)
        actions = [r for r in records if r.correlation_id]
        assert [(r.user, r.capability, r.allowed) for r in actions] == [
            ("vera", "ops:replay", False),
            ("otto", "ops:replay", True),
        ]
        left = await pool.fetchval(
            "SELECT count(*) FROM tether_webhook_deliveries WHERE state = 'dead'"
        )
        assert left == 2
    finally:
        await rx.stop()
        await pool.close()
