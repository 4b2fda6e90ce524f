"""The reference app survives any input: each case once answered 500 (or stored something other
than it answered) and now gets a 4xx problem document, on PostgreSQL through asyncpg."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from fastapi import FastAPI

from tests.contract.http.conftest import async_url

ACME = {"x-api-key": "demo-acme"}
GLOBEX = {"x-api-key": "demo-globex"}
PROBLEM = "application/problem+json"


@pytest.fixture
async def app(pg_dsn: str) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(database_url=async_url(pg_dsn)))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.fixture
async def seller(client: httpx.AsyncClient) -> int:
    made = await client.post("/partners", json={"name": "Mill", "kind": "seller"}, headers=ACME)
    assert made.status_code == 201
    return int(made.json()["id"])


def offer(seller: int, **fields: Any) -> dict[str, Any]:
    body = {"partner_id": seller, "commodity": "wheat", "quantity": "10", "price": "2"}
    return {**body, "location": "Rouen", **fields}


def assert_problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


BAD_BODIES = {
    "nul in a string field": ("/partners", {"name": "a\u0000b", "kind": "seller"}),
    "quantity past numeric(14,3)": ("/availabilities", {"quantity": "1e20"}),
    "price past numeric(14,2)": ("/availabilities", {"price": "1e13"}),
    "partner id past int32": ("/availabilities", {"partner_id": 2_147_483_648}),
    "quantity finer than the column": ("/availabilities", {"quantity": "1e-10"}),
    "price finer than the column": ("/availabilities", {"price": "1.005"}),
    "match ids past int32": (
        "/matches",
        {"availability_id": 2**31, "requirement_id": 2**31, "quantity": "1"},
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_out_of_range_bodies_are_422_problems(
    client: httpx.AsyncClient, seller: int, case: str
) -> None:
    path, fields = BAD_BODIES[case]
    body = offer(seller, **fields) if path == "/availabilities" else fields
    headers = {**ACME, "Idempotency-Key": f"bad-{len(case)}"}
    problem = assert_problem(await client.post(path, json=body, headers=headers))
    assert problem["errors"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    "path",
    [
        "/availabilities?commodity=a%00b",
        "/requirements?commodity=a%00b",
        "/partners/2147483648",
        "/partners/0",
    ],
)
async def test_out_of_range_paths_and_queries_are_422_problems(
    client: httpx.AsyncClient, path: str
) -> None:
    assert_problem(await client.get(path, headers=ACME))


@pytest.mark.parametrize("availability_id", ["abc", "2147483648", "-1"])
async def test_the_path_is_validated_before_the_ownership_check(
    client: httpx.AsyncClient, availability_id: str
) -> None:
    # The trader holds availability:edit:own only, so the owner check runs for this route.
    answer = await client.patch(
        f"/availabilities/{availability_id}", json={"price": "3"}, headers=ACME
    )
    assert assert_problem(answer)["errors"][0]["loc"] == ["path", "availability_id"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800", "kind": "seller"}',
        b'{"name": NaN, "kind": "seller"}',
        b'{"name": "x", "kind": Infinity}',
        b'{"name": "x", "kind": -Infinity, "\\udfff": 1}',
        b'{"name": "\\u0000", "kind": "both"}',
        b'{"name": ',
    ],
)
async def test_the_validation_answer_survives_any_json(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    headers = {**ACME, "content-type": "application/json"}
    assert_problem(await client.post("/partners", content=raw, headers=headers))


async def test_a_body_that_is_not_utf8_is_a_400_problem(client: httpx.AsyncClient) -> None:
    headers = {**ACME, "content-type": "application/json"}
    assert_problem(await client.post("/partners", content=b"\xff\xfe{", headers=headers), 400)


async def test_a_write_answers_exactly_what_a_read_returns(
    client: httpx.AsyncClient, seller: int
) -> None:
    made = await client.post(
        "/availabilities", json=offer(seller, quantity="1E+2", price="210.5"), headers=ACME
    )
    assert made.status_code == 201, made.text
    assert (made.json()["quantity"], made.json()["price"]) == ("100.000", "210.50")
    listed = await client.get("/availabilities", headers=ACME)
    assert listed.status_code == 200 and listed.json() == [made.json()]


async def test_an_offer_matched_in_full_still_lists(client: httpx.AsyncClient, seller: int) -> None:
    buyer = await client.post("/partners", json={"name": "B", "kind": "buyer"}, headers=ACME)
    made = await client.post("/availabilities", json=offer(seller, quantity="5"), headers=ACME)
    need = {"partner_id": buyer.json()["id"], "commodity": "wheat", "quantity": "5"}
    need_made = await client.post(
        "/requirements", json={**need, "max_price": "3", "location": "Paris"}, headers=ACME
    )
    match = {"availability_id": made.json()["id"], "requirement_id": need_made.json()["id"]}
    matched = await client.post(
        "/matches", json={**match, "quantity": "5"}, headers={**ACME, "Idempotency-Key": "m"}
    )
    assert matched.status_code == 201, matched.text
    for path in ("/availabilities", "/requirements", "/matches"):
        listed = await client.get(path, headers=ACME)
        assert listed.status_code == 200, (path, listed.text)
    assert (await client.get("/availabilities", headers=ACME)).json()[0]["quantity"] == "0.000"


async def test_errors_the_routes_raise_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/partners/7", headers=ACME), 404)
    assert_problem(await client.get("/partners"), 401)
    assert_problem(await client.post("/matches", json={}, headers=ACME), 400)


async def test_an_edit_waits_for_a_concurrent_change_and_answers_its_result(
    client: httpx.AsyncClient, seller: int, pg_dsn: str
) -> None:
    made = (await client.post("/availabilities", json=offer(seller), headers=ACME)).json()
    other = await asyncpg.connect(pg_dsn)
    try:
        change = other.transaction()
        await change.start()  # a match in flight: it holds the offer and takes 4 off it
        await other.execute(
            "UPDATE td_availabilities SET quantity = quantity - 4 WHERE id = $1", made["id"]
        )
        edit = asyncio.create_task(
            client.patch(f"/availabilities/{made['id']}", json={"price": "3"}, headers=ACME)
        )
        await asyncio.sleep(0.3)
        assert not edit.done()  # it waits for the offer instead of reading it stale
        await change.commit()
        edited = await edit
    finally:
        await other.close()
    assert edited.status_code == 200, edited.text
    assert (edited.json()["quantity"], edited.json()["price"]) == ("6.000", "3.00")
