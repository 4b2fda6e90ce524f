"""The dispatcher's heartbeat: a request slower than the lease keeps its delivery.

Real time here (leases are renewed against the clock the queue compares with): a 1 s lease,
an endpoint answering after 2.5 s, and a second dispatcher polling all along. Without renewal
the second one would claim the delivery after 1 s and send it again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from tests.integration.webhooks.conftest import LOOPBACK, publish
from tests.integration.webhooks.receiver import Reply, Request, receiving
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings
from tether.webhooks.store import EndpointStore


async def slowly(_: Request) -> Reply:
    await asyncio.sleep(2.5)
    return Reply()


async def test_a_slow_request_keeps_its_delivery_past_the_lease(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore
) -> None:
    config = DispatcherConfig(
        lease=timedelta(seconds=1), total_timeout=5.0, connect_timeout=2.0, breaker=None
    )
    async with receiving(respond=slowly) as rx:
        ep = await store.create(None, EndpointSettings(rx.url()))
        rx.secrets.append(str(ep.secrets.current))
        await publish(pg_dsn, pool, [{"type": "Slow"}])
        stop = asyncio.Event()
        pair = [
            Dispatcher(pool, config=config, ssrf=LOOPBACK, box=store.box, name=f"d{n}")
            for n in range(2)
        ]
        runs = [asyncio.create_task(d.run(stop)) for d in pair]
        try:
            await rx.wait_until(lambda: len(rx.verified) == 1, timeout=15)
            await asyncio.sleep(1.5)  # more than a lease after the answer: a repeat would show
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*runs), 15)
            for d in pair:
                await d.close()
    assert len(rx.answered) == 1
    assert sum(d.sent for d in pair) == 1 and sum(d.lost for d in pair) == 0
    row = await pool.fetchrow("SELECT state, attempts FROM tether_webhook_deliveries")
    assert row["state"] == "done"
