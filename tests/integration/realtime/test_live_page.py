"""The trade desk's live page in headless Chromium (Debian's chromium, driven by Playwright):
it signs in with an API key, subscribes to its org channel, and lists events as the realtime
sink publishes them; another org's events never show. The screenshot's banner pixel is
checked (green when live), not only the DOM."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from playwright.async_api import Browser, async_playwright

from tests.support.centrifuge_interop.serve import serving
from tether.core.envelope import make_event
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


async def test_live_page_shows_its_org_channel(browser, redis_url, tmp_path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'td.db'}", redis_url=redis_url
    )
    app = create_app(settings)
    sink = RealtimeSink(
        RedisBackplane(redis_url),
        Routes({"RequirementPublished": ["org:{tenant}"]}),
    )
    async with serving(app) as url:
        base = url.split("/connection")[0].replace("ws://", "http://")
        page = await browser.new_page(viewport={"width": 800, "height": 500})
        try:
            await page.goto(f"{base}/live#key=demo-acme")
            await page.wait_for_function(
                "document.getElementById('status').textContent === 'live'", timeout=15_000
            )
            events = [
                make_event(
                    "RequirementPublished",
                    {"sku": f"SKU-{n}"},
                    topic="requirement",
                    tenant_id="acme",
                )
                for n in range(3)
            ]
            other = make_event(
                "RequirementPublished",
                {"sku": "GLOBEX-ONLY"},
                topic="requirement",
                tenant_id="globex",
            )
            assert all(o.ok for o in await sink.publish([*events[:2], other, events[2]]))
            await page.wait_for_function(
                "document.querySelectorAll('li.event').length === 3", timeout=15_000
            )
            shot = tmp_path / "live.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000
            items = await page.locator("li.event").all_inner_texts()
            assert [i.split(" ")[1] for i in items] == ["RequirementPublished"] * 3
            assert "SKU-2" in items[0] and "SKU-0" in items[2]  # newest first
            assert "GLOBEX-ONLY" not in await page.content()
            assert await page.text_content("#org") == "acme"
            banner = await page.screenshot(clip={"x": 5, "y": 5, "width": 1, "height": 1})
            assert one_pixel(banner) == LIVE_GREEN
        finally:
            await page.close()
            await sink.close()
