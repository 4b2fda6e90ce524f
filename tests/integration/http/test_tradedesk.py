"""The reference app end to end, on SQLite (demo) and Postgres (production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.http.conftest import async_url

ACME = {"x-api-key": "demo-acme"}
GLOBEX = {"x-api-key": "demo-globex"}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tradedesk.db'}"
    return async_url(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def count(app: FastAPI, sql: str) -> int:
    engine: AsyncEngine = app.state.engine
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def seed(client: httpx.AsyncClient) -> tuple[int, int]:
    seller = (
        await client.post("/partners", json={"name": "Mill", "kind": "seller"}, headers=ACME)
    ).json()
    buyer = (
        await client.post("/partners", json={"name": "Bakery", "kind": "buyer"}, headers=ACME)
    ).json()
    offer = await client.post(
        "/availabilities",
        json={
            "partner_id": seller["id"],
            "commodity": "wheat",
            "quantity": "100",
            "price": "210.50",
            "location": "Rouen",
        },
        headers=ACME,
    )
    need = await client.post(
        "/requirements",
        json={
            "partner_id": buyer["id"],
            "commodity": "wheat",
            "quantity": "40",
            "max_price": "220",
            "location": "Paris",
        },
        headers=ACME,
    )
    assert offer.status_code == need.status_code == 201
    return offer.json()["id"], need.json()["id"]


async def test_create_partner_is_idempotent_and_emits_one_event(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = {**ACME, "Idempotency-Key": '"partner-1"'}
    first = await client.post("/partners", json={"name": "Mill", "kind": "seller"}, headers=headers)
    again = await client.post("/partners", json={"name": "Mill", "kind": "seller"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert first.headers["ratelimit-policy"].startswith('"standard";q=100;w=60')
    assert await count(app, "SELECT count(*) FROM td_partners") == 1
    assert await count(app, "SELECT count(*) FROM tether_outbox WHERE type = 'PartnerCreated'") == 1


async def test_match_flow_writes_rows_and_events_together(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    offer, need = await seed(client)
    body = {"availability_id": offer, "requirement_id": need, "quantity": "30"}
    assert (
        await client.post("/matches", json=body, headers=ACME)
    ).status_code == 400  # key required
    made = await client.post("/matches", json=body, headers={**ACME, "Idempotency-Key": "m-1"})
    assert made.status_code == 201, made.text
    # Route dependency and middleware policies combine into one structured-field list.
    policies = made.headers["ratelimit-policy"].split(", ")
    assert policies == ['"matching";q=10;w=60', '"standard";q=100;w=60', '"per-ip";q=1000;w=60']
    too_much = await client.post(
        "/matches", json={**body, "quantity": "20"}, headers={**ACME, "Idempotency-Key": "m-2"}
    )
    assert too_much.status_code == 409  # only 10 left on the need
    assert await count(app, "SELECT count(*) FROM td_matches") == 1
    assert await count(app, "SELECT count(*) FROM tether_outbox WHERE type = 'MatchMade'") == 1


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "same-key"}
    a = await client.post(
        "/partners", json={"name": "A", "kind": "buyer"}, headers={**ACME, **headers}
    )
    b = await client.post(
        "/partners", json={"name": "A", "kind": "buyer"}, headers={**GLOBEX, **headers}
    )
    assert a.json()["id"] != b.json()["id"] and "idempotent-replayed" not in b.headers
    assert (await client.get(f"/partners/{a.json()['id']}", headers=GLOBEX)).status_code == 404
    assert [p["name"] for p in (await client.get("/partners", headers=GLOBEX)).json()] == ["A"]


async def test_unauthenticated_is_401_and_strict_match_limit_applies(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/partners")).status_code == 401
    assert (await client.get("/health")).status_code == 200
    offer, need = await seed(client)
    body = {"availability_id": offer, "requirement_id": need, "quantity": "1"}
    codes = [
        (
            await client.post("/matches", json=body, headers={**ACME, "Idempotency-Key": f"k{i}"})
        ).status_code
        for i in range(11)
    ]
    assert codes == [201] * 10 + [429]
