"""The reference app with capabilities on every route, on SQLite (demo) and Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.authz import Cap
from examples.tradedesk.settings import ApiClient, Settings
from fastapi import FastAPI

from tether.authz import Authz

KEYS = {
    "k-alice": ApiClient("acme", "alice"),
    "k-carol": ApiClient("acme", "carol"),
    "k-bob": ApiClient("globex", "bob"),
}
ALICE, CAROL, BOB = ({"x-api-key": k} for k in KEYS)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tradedesk.db'}"
    return "postgresql+asyncpg://" + request.getfixturevalue("pg_dsn").split("://", 1)[1]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(database_url=database_url, api_keys=KEYS))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def post(client: httpx.AsyncClient, path: str, body: Any, who: dict[str, str]) -> Any:
    headers = {**who, "Idempotency-Key": uuid.uuid4().hex}
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def offer(client: httpx.AsyncClient, quantity: str = "100000") -> tuple[int, int]:
    seller = await post(client, "/partners", {"name": "Mill", "kind": "both"}, ALICE)
    row = {"commodity": "wheat", "quantity": quantity, "location": "Pune"}
    availability = await post(
        client, "/availabilities", {**row, "partner_id": seller["id"], "price": "200"}, ALICE
    )
    return seller["id"], availability["id"]


def denied(response: httpx.Response, capability: str) -> bool:
    # The reference app answers errors as problem+json; the detail names the capability.
    body = response.json()
    return (response.status_code, body["status"], body["detail"]) == (
        403,
        403,
        f"Missing capability: {capability}",
    )


async def test_traders_post_and_edit_their_own_but_not_others(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, item = await offer(client)
    edit = {"price": "199"}
    assert (await client.patch(f"/availabilities/{item}", json=edit, headers=ALICE)).is_success
    other = await client.patch(f"/availabilities/{item}", json=edit, headers=CAROL)
    assert denied(other, "availability:edit:any")
    authz: Authz = app.state.authz
    await authz.assign_role("carol", "approver", "acme")
    assert (await client.patch(f"/availabilities/{item}", json=edit, headers=CAROL)).is_success


async def test_approving_an_availability_needs_the_approver(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, item = await offer(client)
    assert denied(
        await client.post(f"/availabilities/{item}/approve", headers=ALICE),
        "availability:approve",
    )
    await app.state.authz.assign_role("carol", "approver", "acme")
    assert (await client.post(f"/availabilities/{item}/approve", headers=CAROL)).is_success


async def test_trades_over_one_crore_need_the_high_value_capability(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    partner, item = await offer(client)
    need = {"partner_id": partner, "commodity": "wheat", "quantity": "100000"}
    need_id = (
        await post(client, "/requirements", {**need, "max_price": "220", "location": "Pune"}, ALICE)
    )["id"]
    small = await post(
        client,
        "/matches",
        {"availability_id": item, "requirement_id": need_id, "quantity": "10"},
        ALICE,
    )
    big = await post(  # 60,000 x Rs 200 = Rs 1.2 Cr
        client,
        "/matches",
        {"availability_id": item, "requirement_id": need_id, "quantity": "60000"},
        ALICE,
    )
    authz: Authz = app.state.authz
    assert denied(
        await client.post(f"/matches/{small['id']}/approve", headers=CAROL), "trade:approve"
    )
    await authz.assign_role("carol", "approver", "acme")
    assert (await client.post(f"/matches/{small['id']}/approve", headers=CAROL)).is_success
    big_approval = await client.post(f"/matches/{big['id']}/approve", headers=CAROL)
    assert denied(big_approval, "trade:approve-high-value")
    await authz.grant("carol", Cap.TRADE_APPROVE_HIGH_VALUE, "acme", granted_by="alice")
    assert (await client.post(f"/matches/{big['id']}/approve", headers=CAROL)).is_success


async def test_kyc_verification_is_for_compliance_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    partner, _ = await offer(client)
    assert denied(
        await client.post(f"/partners/{partner}/kyc-verify", headers=ALICE), "partner:kyc-verify"
    )
    await app.state.authz.assign_role("alice", "compliance", "acme")
    assert (await client.post(f"/partners/{partner}/kyc-verify", headers=ALICE)).is_success
    await app.state.authz.unassign_role("alice", "compliance", "acme")
    assert denied(
        await client.post(f"/partners/{partner}/kyc-verify", headers=ALICE), "partner:kyc-verify"
    )


async def test_every_route_requires_a_declared_capability(app: FastAPI) -> None:
    from tether.authz.fastapi import check_routes

    required = set(check_routes(app, app.state.authz))
    # The high-value capability is checked in the handler, once the trade's value is known.
    assert required == {c.value for c in Cap} - {Cap.TRADE_APPROVE_HIGH_VALUE}
    # A grant in another org gives nothing here: bob trades in globex only.
    assert not await app.state.authz.has("bob", Cap.PARTNER_VIEW, "acme")
