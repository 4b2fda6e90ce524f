"""The FastAPI dependency on a small app of our own: org from path, header or claim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from tether.authz import Authz, UnknownCapabilityError
from tether.authz.fastapi import OrgFrom, check_routes, install, require

OWNERS = {"a1": "alice", "b1": "bob"}


def user_from_header(request: Request) -> str | None:
    return request.headers.get("X-User")


async def owner_of_availability(request: Request, user: str) -> bool:
    return OWNERS.get(request.path_params["item"]) == user


def build(authz: Authz, org_source: str) -> FastAPI:
    app = FastAPI()

    @app.post("/orgs/{org_id}/availabilities", dependencies=[Depends(require("availability:post"))])
    async def post_in_path(org_id: str) -> dict[str, str]:
        return {"ok": org_id}

    @app.post("/trades/approve", dependencies=[Depends(require("trade:approve"))])
    async def approve() -> dict[str, str]:
        return {"ok": "approved"}

    @app.put(
        "/availabilities/{item}",
        dependencies=[Depends(require("availability:edit", owner=owner_of_availability))],
    )
    async def edit(item: str) -> dict[str, str]:
        return {"ok": item}

    @app.middleware("http")
    async def fake_token(request: Request, call_next):  # type: ignore[no-untyped-def]
        request.state.claims = {"org": request.headers.get("X-Claim-Org")}
        return await call_next(request)

    sources = {
        "path": OrgFrom.path("org_id"),
        "header": OrgFrom.header("X-Org-Id"),
        "claim": OrgFrom.claim("org"),
    }
    install(app, authz, user=user_from_header, org=sources[org_source])
    return app


@pytest.fixture
async def seeded(authz: Authz) -> Authz:
    await authz.grant("alice", "availability:post", "acme")
    await authz.grant("alice", "availability:edit:own", "acme")
    await authz.grant("root", "trade:approve", "acme")
    return authz


@pytest.fixture
async def client(seeded: Authz, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    app = build(seeded, getattr(request, "param", "header"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@pytest.mark.parametrize("client", ["path"], indirect=True)
async def test_org_from_path(client: httpx.AsyncClient) -> None:
    ok = await client.post("/orgs/acme/availabilities", headers={"X-User": "alice"})
    assert ok.status_code == 200
    other = await client.post("/orgs/globex/availabilities", headers={"X-User": "alice"})
    assert other.status_code == 403
    assert other.json() == {"detail": "Missing capability: availability:post"}


@pytest.mark.parametrize("client", ["header"], indirect=True)
async def test_org_from_header(client: httpx.AsyncClient) -> None:
    headers = {"X-User": "root", "X-Org-Id": "acme"}
    assert (await client.post("/trades/approve", headers=headers)).status_code == 200
    denied = await client.post("/trades/approve", headers={**headers, "X-User": "alice"})
    assert denied.status_code == 403
    assert denied.json()["detail"] == "Missing capability: trade:approve"


@pytest.mark.parametrize("client", ["claim"], indirect=True)
async def test_org_from_token_claim(client: httpx.AsyncClient) -> None:
    headers = {"X-User": "root", "X-Claim-Org": "acme"}
    assert (await client.post("/trades/approve", headers=headers)).status_code == 200
    headers["X-Claim-Org"] = "globex"
    assert (await client.post("/trades/approve", headers=headers)).status_code == 403


async def test_missing_user_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post("/trades/approve")).status_code == 401


async def test_edit_own_but_not_others(client: httpx.AsyncClient) -> None:
    headers = {"X-User": "alice", "X-Org-Id": "acme"}
    assert (await client.put("/availabilities/a1", headers=headers)).status_code == 200
    theirs = await client.put("/availabilities/b1", headers=headers)
    assert theirs.status_code == 403
    assert theirs.json()["detail"] == "Missing capability: availability:edit:any"


async def test_edit_any_with_the_any_grant(seeded: Authz, client: httpx.AsyncClient) -> None:
    await seeded.grant("root", "availability:edit:any", "acme")
    headers = {"X-User": "root", "X-Org-Id": "acme"}
    assert (await client.put("/availabilities/a1", headers=headers)).status_code == 200


async def test_unknown_capability_on_a_route_fails_at_start_up(authz: Authz) -> None:
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(require("trade:aprove"))])
    async def typo() -> None:
        return None

    with pytest.raises(UnknownCapabilityError, match="trade:aprove"):
        install(app, authz, user=user_from_header, org=OrgFrom.header())


async def test_check_routes_lists_every_required_capability(seeded: Authz) -> None:
    app = build(seeded, "header")
    assert check_routes(app, seeded) == [
        "availability:edit:any",
        "availability:edit:own",
        "availability:post",
        "trade:approve",
    ]


def test_require_refuses_a_modifier_with_an_owner() -> None:
    with pytest.raises(ValueError, match="base capability"):
        require("availability:edit:own", owner=owner_of_availability)


async def test_decision_log_gets_the_request_correlation_id(
    seeded: Authz, client: httpx.AsyncClient
) -> None:
    from tether.authz import AuditRecord, DecisionLog

    records: list[AuditRecord] = []
    seeded.audit = DecisionLog("denials", sink=records.append)
    headers = {"X-User": "alice", "X-Org-Id": "acme", "X-Request-ID": "req-7"}
    assert (await client.post("/trades/approve", headers=headers)).status_code == 403
    assert [(r.user, r.capability, r.org, r.correlation_id) for r in records] == [
        ("alice", "trade:approve", "acme", "req-7")
    ]
