"""The reference app with its database behind the pooler: engine, idempotency records,
capability checks (read pool and invalidation watcher) and outbox events all go through it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from fastapi import FastAPI

pytestmark = pytest.mark.postgres

ACME = {"x-api-key": "demo-acme"}


@pytest.fixture(params=["asyncpg", "psycopg"])
async def app(request: pytest.FixtureRequest, pooled_dsn: str) -> AsyncIterator[FastAPI]:
    url = pooled_dsn.replace("postgresql://", f"postgresql+{request.param}://", 1)
    app = create_app(Settings(database_url=url, database_pooler="transaction"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_requests_through_the_pooler(
    client: httpx.AsyncClient, direct_dsn: str, problems_logged: Callable[[], list[str]]
) -> None:
    async def partner(n: int) -> httpx.Response:
        headers = {**ACME, "Idempotency-Key": f'"partner-{n}"'}
        return await client.post(
            "/partners", json={"name": f"P{n}", "kind": "seller"}, headers=headers
        )

    # Concurrent requests, so their transactions share the pooler's server sessions.
    created = await asyncio.gather(*(partner(n) for n in range(12)))
    assert [r.status_code for r in created] == [201] * 12, [r.text for r in created]
    replayed = await partner(3)
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == created[3].json()
    listed = await client.get("/partners", headers=ACME)
    assert listed.status_code == 200 and len(listed.json()) == 12
    assert (await client.get("/partners")).status_code == 401

    conn = await asyncpg.connect(direct_dsn)
    try:
        events = await conn.fetchval(
            "SELECT count(*) FROM tether_outbox WHERE type = 'PartnerCreated'"
        )
    finally:
        await conn.close()
    assert events == 12
    assert problems_logged() == []
