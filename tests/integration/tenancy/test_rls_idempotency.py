"""Idempotency-Key records under row-level security: with PostgresIdempotencyStore(tenancy=True)
on an application role, each tenant's records are its own (the same key in two tenants runs the
handler twice, a retry in one tenant replays), a session scoped to tenant A sees, counts and
purges none of B's records, an unscoped one sees nothing, and a request without a valid tenant
is refused before anything is written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.core.errors import EventValidationError, StoreError
from tether.http.idempotency import IdempotencyMiddleware, IdempotencyPolicy, complete_in
from tether.http.idempotency.records import Outcome, StoredResponse
from tether.http.idempotency.stores.postgres import PostgresIdempotencyStore
from tether.http.identity import tenant_of
from tether.outbox import ProducerPolicy, add_event, configure
from tether.tenancy import tenant_scope

pytestmark = pytest.mark.timeout(60)

RECORDS = "SELECT count(*) FROM tether_idempotency"


def sa_url(dsn: str) -> str:
    return "postgresql+asyncpg://" + dsn.split("://", 1)[1]


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    previous = configure(ProducerPolicy(tenancy=True))
    try:
        with tenancy_database() as created:
            yield created
    finally:
        configure(previous)


@pytest.fixture
async def engines(db: TenancyDb) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    app, owner = create_async_engine(sa_url(db.app)), create_async_engine(sa_url(db.admin))
    yield app, owner
    await app.dispose()
    await owner.dispose()


class Auth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = dict(scope.get("headers", [])).get(b"x-tenant")
        if tenant is not None:
            scope.setdefault("state", {})["tenant_id"] = tenant.decode()
        await self.app(scope, receive, send)


def make_app(engine: AsyncEngine, runs: list[str]) -> Starlette:
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def pay(request: Request) -> Response:
        tenant = tenant_of(request.scope) or ""
        runs.append(tenant)
        async with sessions() as session, session.begin():
            await tenant_scope(session, tenant)
            await add_event(session, "Paid", {"n": len(runs)}, tenant_id=tenant)
            await complete_in(session, status_code=201, body={"n": len(runs)})
        return JSONResponse({"n": len(runs)}, status_code=201)

    app = Starlette(routes=[Route("/pay", pay, methods=["POST"])])
    store = PostgresIdempotencyStore(engine, tenancy=True)
    app.add_middleware(IdempotencyMiddleware, store=store, policy=IdempotencyPolicy())
    app.add_middleware(Auth)
    return app


async def count(engine: AsyncEngine, sql: str, tenant: str | None = None) -> int:
    async with engine.begin() as conn:
        if tenant is not None:
            await tenant_scope(conn, tenant)
        return int((await conn.execute(text(sql))).scalar_one())


async def test_records_are_per_tenant_and_hidden_from_others(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    app_engine, owner = engines
    runs: list[str] = []
    transport = httpx.ASGITransport(app=make_app(app_engine, runs), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def pay(tenant: str) -> httpx.Response:
            headers = {"Idempotency-Key": '"k1"', "x-tenant": tenant}
            return await client.post("/pay", content=b"{}", headers=headers)

        first, other, retry = await pay("acme"), await pay("globex"), await pay("acme")
    assert (first.status_code, other.status_code, retry.status_code) == (201, 201, 201)
    assert runs == ["acme", "globex"]  # the same key in another tenant is another record
    assert retry.headers["idempotent-replayed"] == "true" and retry.json() == first.json()
    assert await count(app_engine, RECORDS, "acme") == 1
    assert await count(app_engine, RECORDS) == 0  # unscoped: fails closed
    assert await count(owner, RECORDS) == 2
    assert await count(app_engine, "SELECT count(*) FROM tether_outbox", "acme") == 1

    # Purging expired records as the application role reaches only the scoped tenant's.
    async with owner.begin() as conn:
        await conn.execute(text("UPDATE tether_idempotency SET expires_at = now() - interval '1s'"))
    assert await PostgresIdempotencyStore(app_engine, tenancy=True).purge_expired() == 0
    async with app_engine.begin() as conn:
        await tenant_scope(conn, "acme")
        gone = await conn.execute(text("DELETE FROM tether_idempotency WHERE expires_at <= now()"))
        assert gone.rowcount == 1
    assert await count(owner, RECORDS) == 1


async def test_a_request_without_a_valid_tenant_writes_nothing(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    app_engine, owner = engines
    store = PostgresIdempotencyStore(app_engine, tenancy=True)
    for bad in ("", "acme corp", "x" * 300):
        with pytest.raises(EventValidationError, match="tenant_id"):
            await store.begin("key", "fp", bad, 30, 60)
    assert await count(owner, RECORDS) == 0


async def test_release_and_complete_scope_themselves_from_the_token(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    app_engine, owner = engines
    store = PostgresIdempotencyStore(app_engine, tenancy=True)
    held = await store.begin("k-a", "fp", "acme", 30, 60)
    assert held.outcome is Outcome.ACQUIRED and held.token.startswith("acme ")
    await store.release("k-a", held.token)
    assert await count(owner, RECORDS) == 0  # released: the row of acme was reachable
    held = await store.begin("k-a", "fp", "acme", 30, 60)
    assert await store.complete("k-a", held.token, StoredResponse(200, (), b"ok"), 60)
    again = await store.begin("k-a", "fp", "acme", 30, 60)
    assert again.outcome is Outcome.COMPLETED
    # The middleware hashes the tenant into the key, so tenants never share one; even a forced
    # collision cannot take over or read acme's record: the database refuses the upsert.
    with pytest.raises(StoreError, match="row-level security"):
        await store.begin("k-a", "fp", "globex", 30, 60)
    assert (
        await count(owner, "SELECT count(*) FROM tether_idempotency WHERE state = 'completed'") == 1
    )
