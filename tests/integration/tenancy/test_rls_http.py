"""The FastAPI helpers on an asyncpg connection: a request for tenant A reads and writes only
A's rows; without a tenant, or with an invalid one, the request gets 403 and nothing is sent to
the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.http.tenancy import current_tenant, tenant_session
from tether.outbox import ProducerPolicy, add_event, configure

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    previous = configure(ProducerPolicy(tenancy=True))
    try:
        with tenancy_database() as created:
            yield created
    finally:
        configure(previous)


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(request.app.state.dsn)
    request.app.state.opened += 1
    try:
        async with conn.transaction():
            yield conn
    finally:
        await conn.close()


Scoped = Annotated[asyncpg.Connection, Depends(tenant_session(connection))]


def build(dsn: str) -> FastAPI:
    app = FastAPI()
    app.state.dsn, app.state.opened = dsn, 0

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Any:
        tenant = request.headers.get("x-tenant")
        if tenant is not None:
            request.scope.setdefault("state", {})["tenant_id"] = tenant
        return await call_next(request)

    @app.post("/events")
    async def write(tenant: Annotated[str, Depends(current_tenant)], conn: Scoped) -> int:
        await add_event(conn, "OrderPlaced", {}, tenant_id=tenant)
        return int(await conn.fetchval("SELECT count(*) FROM tether_outbox"))

    @app.get("/count")
    async def count(conn: Scoped) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM tether_outbox"))

    return app


async def test_requests_see_only_their_tenants_rows(db: TenancyDb) -> None:
    app = build(db.app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for tenant in ("acme", "acme", "globex"):
            r = await client.post("/events", headers={"x-tenant": tenant})
            assert r.status_code == 200, r.text
        assert (await client.get("/count", headers={"x-tenant": "acme"})).json() == 2
        assert (await client.get("/count", headers={"x-tenant": "globex"})).json() == 1
        opened = app.state.opened
        for headers in ({}, {"x-tenant": "acme corp"}, {"x-tenant": "x" * 300}):
            for method in ("GET", "POST"):
                path = "/count" if method == "GET" else "/events"
                r = await client.request(method, path, headers=headers)
                assert r.status_code == 403, r.text
        # Refused before the session dependency ran: no connection was even opened.
        assert app.state.opened == opened
    conn = await asyncpg.connect(db.admin)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tether_outbox") == 3
    finally:
        await conn.close()
