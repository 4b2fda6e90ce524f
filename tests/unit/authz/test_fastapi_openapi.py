"""Routes guarded by ``require()`` declare their 401 and 403 answers in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from tether.authz import Authz
from tether.authz.fastapi import FASTAPI_ERROR_CONTENT, OrgFrom, install, require

PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}


def user(request: Request) -> str | None:
    return request.headers.get("X-User")


def build(authz: Authz, **options: Any) -> FastAPI:
    app = FastAPI()
    trades = APIRouter(prefix="/trades", dependencies=[Depends(require("trade:approve"))])

    @trades.post("/{trade_id}/approve")
    async def approve(trade_id: int) -> dict[str, int]:
        return {"ok": trade_id}

    @app.post("/availabilities", dependencies=[Depends(require("availability:post"))])
    async def post() -> dict[str, str]:
        return {"ok": "posted"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "up"}

    app.include_router(trades)
    install(app, authz, user=user, org=OrgFrom.header(), **options)
    return app


def responses(app: FastAPI, path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = app.openapi()["paths"][path][method]["responses"]
    return found


async def test_guarded_routes_declare_401_and_403(authz: Authz) -> None:
    app = build(authz)
    for path, method in [("/availabilities", "post"), ("/trades/{trade_id}/approve", "post")]:
        declared = responses(app, path, method)
        assert {"401", "403"} <= set(declared), path
        assert declared["403"]["content"] == FASTAPI_ERROR_CONTENT
    assert {"401", "403"}.isdisjoint(responses(app, "/health", "get"))


async def test_the_app_says_how_it_renders_errors(authz: Authz) -> None:
    app = build(authz, error_content=PROBLEM)
    assert responses(app, "/availabilities", "post")["401"]["content"] == PROBLEM
    app.openapi()  # built once: asking again changes nothing
    assert list(responses(app, "/availabilities", "post")).count("403") == 1
