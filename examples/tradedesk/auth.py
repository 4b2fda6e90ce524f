"""API-key authentication as plain ASGI middleware.

It runs outermost, so the rate limiter and the Idempotency-Key middleware behind it already
know the tenant and principal (``scope["state"]``); route dependencies read the same values.
"""

from __future__ import annotations

from collections.abc import Mapping

from examples.tradedesk.settings import ApiClient
from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.http.problem import send_problem


class ApiKeyAuth:
    def __init__(self, app: ASGIApp, keys: Mapping[str, ApiClient], open_paths: tuple[str, ...]):
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.open_paths):
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"x-api-key", b"").decode("latin-1")
        client = self.keys.get(raw)
        if client is None:
            await send_problem(
                send, 401, "unauthenticated", "Unauthorized", "send a valid X-API-Key"
            )
            return
        state = scope.setdefault("state", {})
        state.update(tenant_id=client.tenant_id, principal=client.principal, plan=client.plan)
        await self.app(scope, receive, send)


def tenant_of(request: Request) -> str:
    """Route dependency: the caller's tenant, as authenticated above."""
    tenant = getattr(request.state, "tenant_id", None)
    if not tenant:
        raise HTTPException(401, "not authenticated")
    return str(tenant)


def principal_of(request: Request) -> str:
    """Route dependency: the authenticated caller."""
    principal = getattr(request.state, "principal", None)
    if not principal:
        raise HTTPException(401, "not authenticated")
    return str(principal)
