"""The dashboard with the webhook dispatchers' shared circuit breakers and a consumer's dead
letters on its broker: see an open circuit and reset it, see a dead letter and replay it.

Run: ``.venv/bin/python examples/dashboard_brokers.py [ADMIN_DSN] [REDIS_URL]`` (defaults
``postgresql://postgres@127.0.0.1:5432/postgres`` and ``redis://127.0.0.1:6379/0``): it creates
a scratch database, applies Tether's migrations, uses a fresh Redis stream, and removes both at
the end.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import redis.asyncio as aioredis

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.consume.boxes import Broker
from tether.consume.port import Failure
from tether.consume.redis_streams import RedisStreamsSource
from tether.core.envelope import make_event
from tether.dashboard import (
    ConsumerDlq,
    DashboardSettings,
    OpsCap,
    TokenUsers,
    create_dashboard,
    digest,
)
from tether.guard import Guard, RedisBreakerStore
from tether.net import SsrfPolicy
from tether.sinks.redis_streams import RedisStreamsSink
from tether.store import migrations
from tether.webhooks.gates import breaker_name
from tether.webhooks.model import EndpointSettings
from tether.webhooks.store import EndpointStore


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def demo(dsn: str, redis_url: str, stream: str) -> None:
    store = SqlAuthzStore.from_url(dsn)
    authz = Authz(store, Registry(OpsCap))
    await authz.sync()
    await authz.add_user("ana")
    for cap in (OpsCap.VIEW, OpsCap.REPLAY):
        await authz.grant("ana", cap)
    redis = aioredis.from_url(redis_url)

    # 1. The Redis the dispatchers share their breakers through (tether webhooks run
    #    --redis-url), and the consumers whose dead letters to show.
    breakers = RedisBreakerStore(redis)
    consumers = [ConsumerDlq(Broker.redis, redis_url, stream, "billing")]
    settings = DashboardSettings(
        dsn,
        secret_key="x" * 48,
        users=TokenUsers({digest("ana-personal-token-7d1e0c"): "ana"}),
        breaker_store=breakers,
        consumer_dlqs=consumers,
    )
    dashboard = create_dashboard(settings, authz)

    # 2. An endpoint whose circuit opened: five failures within a minute, as a dispatcher's
    #    guard records them under the endpoint's breaker name.
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    endpoints = EndpointStore(pool, ssrf=SsrfPolicy(allow=["127.0.0.1"]))
    endpoint = await endpoints.create("acme", EndpointSettings("http://127.0.0.1:9/hooks"))
    guard: Guard[None] = Guard(breaker_name(endpoint.id), store=breakers)
    for _ in range(5):
        await guard.record_failure()

    # 3. A consumer dead-letters an event its handler refused (as tether.consume's runner does).
    sink = await RedisStreamsSink.connect(redis_url, stream=stream)
    await sink.publish(
        [make_event("OrderPlaced", {"n": 1}, aggregate_type="order", aggregate_id="o-1")]
    )
    source = await RedisStreamsSource.connect(redis_url, stream=stream, group="billing")
    (delivery,) = await source.receive(1, 1.0)
    refused = Failure(
        "handler", "ValueError: card declined", delivery.deliveries, datetime.now(UTC)
    )
    await source.dead_letter(delivery, refused)

    transport = httpx.ASGITransport(app=dashboard)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops.local") as client:
        page = await client.get("/login")
        token = {"token": "ana-personal-token-7d1e0c", "csrf": csrf_of(page.text)}
        await client.post("/login", data=token)
        listing = await client.get("/webhooks")
        print("circuit:", re.findall(r'class="badge circuit-(\w+)"', listing.text))

        # 4. Reset it (ops:replay, CSRF token): every dispatcher sees it closed.
        reset = await client.post(
            f"/webhooks/{endpoint.id}/circuit/reset", data={"csrf": csrf_of(listing.text)}
        )
        after = await client.get(reset.headers["location"])
        print("reset:", reset.status_code, re.findall(r"badge circuit-(\w+)", after.text))

        # 5. The consumer's dead letters, then replay all through the confirmation's count.
        dead = await client.get("/consumers")
        print(
            "consumer dead letters:",
            dead.text.count('class="dlq-id"'),
            "card declined" in dead.text,
        )
        form = {"csrf": csrf_of(dead.text), "source": "0", "label": consumers[0].label}
        confirm = await client.post("/consumers/confirm", data={**form, "scope": "all"})
        count = re.search(r'<strong id="count">([^<]+)</strong>', confirm.text)
        done = await client.post("/consumers/run", data={**form, "scope": "all"})
        print("replay:", count and count.group(1), done.status_code)
    (again,) = await source.receive(1, 1.0)
    print("back on the stream:", again.attributes["type"], "deliveries", again.deliveries)

    await source.close()
    await sink.close()
    await dashboard.state.dashboard.db.close()
    await pool.close()
    await store.close()
    await redis.delete(stream, f"{stream}:dlq", f"{{{stream}}}:retry:billing")
    await redis.aclose()


async def main(admin_dsn: str, redis_url: str) -> None:
    name = f"tether_example_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrations.upgrade, dsn)
        await demo(dsn, redis_url, f"orders-{uuid.uuid4().hex[:8]}")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres",
            sys.argv[2] if len(sys.argv) > 2 else "redis://127.0.0.1:6379/0",
        )
    )
