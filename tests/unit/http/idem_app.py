"""A small Starlette app behind the Idempotency-Key middleware, shared by the HTTP edge tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.http.idempotency import (
    IdempotencyMiddleware,
    IdempotencyPolicy,
    IdempotencyStore,
    Mode,
    RouteRule,
)


@dataclass
class Calls:
    count: int = 0
    bodies: list[bytes] = field(default_factory=list)
    chunks: list[list[bytes]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    delay: float = 0.0


class TenantFromHeader:
    """Stands in for authentication middleware: puts the tenant where the middleware reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            tenant = dict(scope["headers"]).get(b"x-tenant", b"").decode()
            scope.setdefault("state", {})["tenant_id"] = tenant
        await self.app(scope, receive, send)


def build(
    store: IdempotencyStore, calls: Calls, policy: IdempotencyPolicy | None = None
) -> ASGIApp:
    async def create(request: Request) -> Response:
        calls.count += 1
        body = await request.body()
        calls.bodies.append(body)
        if calls.gate is not None:
            await calls.gate.wait()
        if calls.delay:
            await asyncio.sleep(calls.delay)  # simulated work, not a wait for a condition
        return JSONResponse(
            {"n": calls.count, "echo": body.decode()}, status_code=201, headers={"x-made": "yes"}
        )

    async def stream(request: Request) -> Response:
        calls.count += 1
        calls.chunks.append([chunk async for chunk in request.stream()])
        return JSONResponse({"ok": True})

    async def boom(request: Request) -> Response:
        calls.count += 1
        raise RuntimeError("handler failed")

    async def status(request: Request) -> Response:
        calls.count += 1
        return JSONResponse({"n": calls.count}, status_code=int(request.path_params["code"]))

    routes = [
        Route("/items", create, methods=["POST", "PUT", "GET"]),
        Route("/payments", create, methods=["POST"]),
        Route("/webhooks", create, methods=["POST"]),
        Route("/stream", stream, methods=["POST"]),
        Route("/boom", boom, methods=["POST"]),
        Route("/status/{code:int}", status, methods=["POST"]),
    ]
    policy = policy or IdempotencyPolicy(
        routes=(RouteRule("/payments", Mode.REQUIRED), RouteRule("/webhooks", Mode.OFF)),
        max_body_bytes=1024,
    )
    app = Starlette(routes=routes)
    return TenantFromHeader(IdempotencyMiddleware(app, store, policy))
