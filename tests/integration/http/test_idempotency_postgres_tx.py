"""The Postgres store completes the record in the handler's own transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contract.http.conftest import async_url
from tether.core.errors import LeaseLostError
from tether.http.idempotency import IdempotencyMiddleware, IdempotencyPolicy, complete_in
from tether.http.idempotency.stores.postgres import PostgresIdempotencyStore

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(pg_dsn), pool_size=10)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE orders (id serial PRIMARY KEY, item text)"))
    yield engine
    await engine.dispose()


class Knobs:
    fail_after_complete = False
    committed = asyncio.Event
    gate: asyncio.Event | None = None
    runs = 0


def make_app(engine: AsyncEngine, knobs: Knobs, policy: IdempotencyPolicy) -> Starlette:
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create(request: Request) -> Response:
        knobs.runs += 1
        item = (await request.body()).decode()
        async with sessions() as session, session.begin():
            row = await session.execute(
                text("INSERT INTO orders (item) VALUES (:item) RETURNING id"), {"item": item}
            )
            order = {"id": row.scalar_one(), "item": item}
            await complete_in(session, status_code=201, body=order)
            if knobs.fail_after_complete:
                raise RuntimeError("crash before commit")
        if knobs.gate is not None:
            await knobs.gate.wait()  # committed, response not yet captured by the middleware
        return JSONResponse(order, status_code=201)

    store = PostgresIdempotencyStore(engine)
    app = Starlette(routes=[Route("/orders", create, methods=["POST"])])
    app.add_middleware(IdempotencyMiddleware, store=store, policy=policy)
    return app


async def count_orders(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one())


def client_for(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_rollback_after_complete_in_leaves_no_record(engine: AsyncEngine) -> None:
    knobs = Knobs()
    knobs.fail_after_complete = True
    async with client_for(make_app(engine, knobs, IdempotencyPolicy())) as c:
        assert (
            await c.post("/orders", content=b"tea", headers={"Idempotency-Key": "k"})
        ).status_code == 500
        knobs.fail_after_complete = False
        ok = await c.post("/orders", content=b"tea", headers={"Idempotency-Key": "k"})
        again = await c.post("/orders", content=b"tea", headers={"Idempotency-Key": "k"})
    assert ok.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert await count_orders(engine) == 1 and knobs.runs == 2


async def test_record_exists_the_moment_the_business_change_commits(engine: AsyncEngine) -> None:
    knobs = Knobs()
    knobs.gate = asyncio.Event()
    async with client_for(make_app(engine, knobs, IdempotencyPolicy())) as c:
        first = asyncio.create_task(
            c.post("/orders", content=b"tea", headers={"Idempotency-Key": "k"})
        )
        async with asyncio.timeout(5):
            while await count_orders(engine) == 0:
                await asyncio.sleep(0.01)
        # Committed, the middleware has not stored the response yet: a retry already replays.
        retry = await c.post("/orders", content=b"tea", headers={"Idempotency-Key": "k"})
        assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["item"] == "tea"
        knobs.gate.set()
        assert (await first).status_code == 201
    assert knobs.runs == 1 and await count_orders(engine) == 1


async def test_lost_lease_rolls_the_handler_back(engine: AsyncEngine) -> None:
    store = PostgresIdempotencyStore(engine)
    begin = await store.begin("k", "fp", "", 30, 60)
    async with engine.begin() as conn:  # someone else's takeover: the token changes
        await conn.execute(text("UPDATE tether_idempotency SET lease_token = 'other'"))
    from tether.http.idempotency import StoredResponse

    sessions = async_sessionmaker(engine)
    with pytest.raises(LeaseLostError):
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO orders (item) VALUES ('x')"))
            await store.complete_in(session, "k", begin.token, StoredResponse(201, (), b""), 60)
    assert await count_orders(engine) == 0


async def test_500_concurrent_duplicates_execute_once_on_postgres(engine: AsyncEngine) -> None:
    knobs = Knobs()
    async with client_for(make_app(engine, knobs, IdempotencyPolicy())) as c:
        responses = await asyncio.gather(
            *(
                c.post("/orders", content=b"tea", headers={"Idempotency-Key": "once"})
                for _ in range(500)
            )
        )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409} and statuses.count(201) >= 1
    assert knobs.runs == 1 and await count_orders(engine) == 1


async def test_tenant_a_never_replays_tenant_b(engine: AsyncEngine) -> None:
    def tenant_of(scope: dict[str, object]) -> tuple[str, str]:
        headers = dict(scope["headers"])  # type: ignore[call-overload]
        return headers.get(b"x-tenant", b"").decode(), "user"

    knobs = Knobs()
    async with client_for(make_app(engine, knobs, IdempotencyPolicy(identity=tenant_of))) as c:
        a = await c.post(
            "/orders", content=b"tea", headers={"Idempotency-Key": "k", "x-tenant": "A"}
        )
        b = await c.post(
            "/orders", content=b"tea", headers={"Idempotency-Key": "k", "x-tenant": "B"}
        )
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers
    assert await count_orders(engine) == 2


async def test_purge_expired_deletes_only_expired_records(engine: AsyncEngine) -> None:
    from tether.http.idempotency import StoredResponse

    store = PostgresIdempotencyStore(engine)
    done = await store.begin("old", "fp", "", 30, 60)
    await store.complete("old", done.token, StoredResponse(200, (), b""), 0.001)
    await store.begin("live", "fp", "", 30, 60)
    async with asyncio.timeout(5):
        while await store.purge_expired() == 0:
            await asyncio.sleep(0.01)
    async with engine.connect() as conn:
        keys = (await conn.execute(text("SELECT scope_key FROM tether_idempotency"))).scalars()
        assert list(keys) == ["live"]
