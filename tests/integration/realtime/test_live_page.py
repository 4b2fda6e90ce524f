"""The trade desk's live page in headless Chromium (Debian's chromium, driven by Playwright):
it signs in with an API key, subscribes to its org channel, and lists events as the realtime
sink publishes them; another org's events never show. The screenshot's banner pixel is
checked (green when live), not only the DOM."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from playwright.async_api import Browser, async_playwright

from tests.support.centrifuge_interop.serve import serving
from tether.outbox.relay import Relay
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.realtime import RedisBackplane, Routes
from tether.sinks.realtime import RealtimeSink

pytestmark = [pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LIVE_GREEN = (0x1B, 0x87, 0x3F)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/install"
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


def one_pixel(png: bytes) -> tuple[int, int, int]:
    """The colour of a 1x1 PNG (a one-pixel row reads the same under every filter)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return raw[1], raw[2], raw[3]


async def post_requirements(base: str, key: str, count: int) -> None:
    """Requirements posted through the trade desk's API: each commits a RequirementPosted
    event to the outbox with the business row."""
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=base, timeout=20) as api:
        buyer = await api.post(
            "/partners", json={"name": "Bakery", "kind": "buyer"}, headers=headers
        )
        assert buyer.status_code == 201, buyer.text
        for n in range(count):
            need = await api.post(
                "/requirements",
                json={
                    "partner_id": buyer.json()["id"],
                    "commodity": f"wheat-{n}",
                    "quantity": "40",
                    "max_price": "220",
                    "location": "Paris",
                },
                headers=headers,
            )
            assert need.status_code == 201, need.text


async def test_live_page_shows_its_org_channel(browser, redis_url, tmp_path) -> None:
    db = tmp_path / "td.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", redis_url=redis_url)
    app = create_app(settings)
    sink = RealtimeSink(RedisBackplane(redis_url), Routes({"RequirementPosted": ["org:{tenant}"]}))
    async with serving(app) as url:
        base = url.split("/connection")[0].replace("ws://", "http://")
        page = await browser.new_page(viewport={"width": 800, "height": 500})
        outbox = await SqliteOutboxStore.connect(str(db))
        relay = Relay(outbox, [sink])
        try:
            await page.goto(f"{base}/live#key=demo-acme")
            await page.wait_for_function(
                "document.getElementById('status').textContent === 'live'", timeout=15_000
            )
            await post_requirements(base, "demo-acme", 3)
            await post_requirements(base, "demo-globex", 1)
            async with asyncio.timeout(20):  # the relay, as `tether relay` runs it
                while (await relay.run_once()).published:
                    pass
            await page.wait_for_function(
                "document.querySelectorAll('li.event').length === 3", timeout=15_000
            )
            shot = tmp_path / "live.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000
            items = await page.locator("li.event").all_inner_texts()
            assert [i.split(" ")[1] for i in items] == ["RequirementPosted"] * 3
            assert "wheat-2" in items[0] and "wheat-0" in items[2]  # newest first
            assert await page.text_content("#org") == "acme"
            banner = await page.screenshot(clip={"x": 5, "y": 5, "width": 1, "height": 1})
            assert one_pixel(banner) == LIVE_GREEN
        finally:
            await page.close()
            await outbox.close()
            await sink.close()
