"""The HTTP routes: capabilities, the caller's tenant only, secrets shown once, named errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from tether.authz import Authz, MemoryAuthzStore, Registry
from tether.authz.fastapi import OrgFrom, install
from tether.webhooks.deliveries import DeliveryLog
from tether.webhooks.routes import Cap, webhooks_router
from tether.webhooks.store import EndpointStore


@pytest.fixture
async def client(pool: asyncpg.Pool, store: EndpointStore) -> AsyncIterator[httpx.AsyncClient]:
    authz = Authz(MemoryAuthzStore(), Registry(Cap))
    await authz.sync()
    for user in ("ann", "bo", "viewer"):
        await authz.add_user(user)
    for org in ("a", "b"):
        await authz.add_org(org)
    await authz.grant("ann", Cap.MANAGE, "a")
    await authz.grant("ann", Cap.READ, "a")
    await authz.grant("bo", Cap.MANAGE, "b")
    await authz.grant("bo", Cap.READ, "b")
    await authz.grant("viewer", Cap.READ, "a")
    app = FastAPI()
    app.include_router(webhooks_router(store, DeliveryLog(pool)), prefix="/webhooks")

    @app.middleware("http")
    async def authenticate(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Stands in for real authentication, which leaves the caller's tenant here.
        request.scope.setdefault("state", {})["tenant_id"] = request.headers.get("X-Tenant")
        return await call_next(request)

    install(app, authz, user=lambda r: r.headers.get("X-User"), org=OrgFrom.tenant())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        yield http


def as_(user: str, tenant: str) -> dict[str, str]:
    return {"X-User": user, "X-Tenant": tenant}


async def test_a_tenant_manages_its_endpoints_and_never_sees_anothers(
    client: httpx.AsyncClient,
) -> None:
    made = await client.post(
        "/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/a", "filters": ["Order*"], "priority": "high"},
        headers=as_("ann", "a"),
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_") and body["tenant"] == "a"
    eid = body["id"]
    got = await client.get(f"/webhooks/endpoints/{eid}", headers=as_("viewer", "a"))
    assert got.status_code == 200 and "secret" not in got.json()
    assert body["secret"] not in got.text
    # Tenant b: not found for every route, and an empty list.
    for method, path, json in (
        ("GET", f"/webhooks/endpoints/{eid}", None),
        ("PATCH", f"/webhooks/endpoints/{eid}", {"enabled": False}),
        ("DELETE", f"/webhooks/endpoints/{eid}", None),
        ("POST", f"/webhooks/endpoints/{eid}/rotate", None),
        ("POST", f"/webhooks/endpoints/{eid}/recover", {"since": "2026-01-01T00:00:00Z"}),
    ):
        r = await client.request(method, path, json=json, headers=as_("bo", "b"))
        assert r.status_code == 404, (method, path, r.text)
    assert (await client.get("/webhooks/endpoints", headers=as_("bo", "b"))).json() == []
    assert (await client.get("/webhooks/deliveries", headers=as_("bo", "b"))).json() == []
    # Capabilities: a reader cannot change anything; nobody acts in a tenant not theirs.
    r = await client.patch(f"/webhooks/endpoints/{eid}", json={"enabled": False},
                           headers=as_("viewer", "a"))  # fmt: skip
    assert r.status_code == 403
    assert (await client.get("/webhooks/endpoints", headers=as_("ann", "b"))).status_code == 403
    assert (await client.get("/webhooks/endpoints")).status_code in (401, 403)
    # Changes, rotation (the new secret shown once), deletion.
    r = await client.patch(f"/webhooks/endpoints/{eid}", json={"enabled": False},
                           headers=as_("ann", "a"))  # fmt: skip
    assert r.json()["enabled"] is False and r.json()["disabled_reason"] == "by request"
    rotated = await client.post(f"/webhooks/endpoints/{eid}/rotate", headers=as_("ann", "a"))
    assert rotated.json()["secret"] != body["secret"] and len(rotated.json()["secrets"]) == 2
    assert (
        await client.delete(f"/webhooks/endpoints/{eid}", headers=as_("ann", "a"))
    ).status_code == 204


async def test_bad_input_is_refused_with_the_reason(client: httpx.AsyncClient) -> None:
    cases = [
        ({"url": "http://10.0.0.1/"}, "url refused"),
        ({"url": "https://example.com/", "headers": {"Host": "x"}}, "set by the dispatcher"),
        ({"url": "https://example.com/", "filters": []}, "must not be empty"),
        ({"url": "https://example.com/", "concurrency": 0}, "concurrency"),
    ]
    for body, reason in cases:
        r = await client.post("/webhooks/endpoints", json=body, headers=as_("ann", "a"))
        assert r.status_code == 422 and reason in r.text, (body, r.text)
    r = await client.post("/webhooks/endpoints", json={"url": "https://e.com/", "nope": 1},
                          headers=as_("ann", "a"))  # fmt: skip
    assert r.status_code == 422
    r = await client.get("/webhooks/deliveries?state=lost", headers=as_("ann", "a"))
    assert r.status_code == 422 and "state" in r.text
    r = await client.get("/webhooks/endpoints/not-a-uuid", headers=as_("ann", "a"))
    assert r.status_code == 422
