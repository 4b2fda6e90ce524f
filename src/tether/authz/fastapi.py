"""FastAPI integration: ``Depends(require("availability:post"))``.

``install(app, authz, user=..., org=...)`` says where the user and the organization of a
request come from (path parameter, header or token claim) and checks every capability the
app's routes require against the registry, so a typo fails at start-up, not as a deny.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute

from tether.authz import audit
from tether.authz.errors import Forbidden
from tether.authz.model import Decision
from tether.authz.names import parse
from tether.authz.service import Authz

UserSource = Callable[[Request], Awaitable[str | None] | str | None]
OrgSource = Callable[[Request], str | None]
OwnerResolver = Callable[[Request, str], Awaitable[bool] | bool]


class OrgFrom:
    """Where the organization of a request comes from."""

    @staticmethod
    def path(name: str = "org_id") -> OrgSource:
        return lambda request: request.path_params.get(name)

    @staticmethod
    def header(name: str = "X-Org-Id") -> OrgSource:
        return lambda request: request.headers.get(name)

    @staticmethod
    def claim(
        name: str = "org", claims: Callable[[Request], Mapping[str, Any] | None] | None = None
    ) -> OrgSource:
        """A claim of the verified token; by default read from ``request.state.claims``."""
        get = claims or (lambda request: getattr(request.state, "claims", None))

        def source(request: Request) -> str | None:
            found = (get(request) or {}).get(name)
            return None if found is None else str(found)

        return source

    @staticmethod
    def tenant() -> OrgSource:
        """The tenant authentication left in ``scope["state"]["tenant_id"]``: the org with
        tenancy on (docs/tenancy.md)."""
        return _tenant_of


def _tenant_of(request: Request) -> str | None:
    # Where authentication leaves the tenant (tether.http.identity.tenant_of reads the same
    # place; authorization does not import the HTTP edge).
    found = (request.scope.get("state") or {}).get("tenant_id")
    return str(found) if found else None


@dataclass(frozen=True, slots=True)
class AuthzConfig:
    authz: Authz
    user: UserSource
    org: OrgSource
    correlation_header: str = "X-Request-ID"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Requirement:
    """The dependency ``require`` returns; FastAPI calls it with the request."""

    def __init__(self, capability: str, owner: OwnerResolver | None = None) -> None:
        parsed = parse(capability)
        if owner is not None and parsed.modifier is not None:
            raise ValueError(f"with owner=, name the base capability, not {capability!r}")
        self.capability = capability
        self.owner = owner

    def names(self) -> list[str]:
        if self.owner is None:
            return [self.capability]
        return [f"{self.capability}:own", f"{self.capability}:any"]

    async def __call__(self, request: Request) -> Decision | None:
        config: AuthzConfig | None = getattr(request.app.state, "tether_authz", None)
        if config is None:
            raise RuntimeError("tether.authz.fastapi.install(app, ...) was not called")
        user = await _maybe_await(config.user(request))
        if not user:
            raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        org = config.org(request)
        if config.authz.tenancy:
            org = _org_in_tenant(request, org)
        audit.correlation_id.set(request.headers.get(config.correlation_header))
        try:
            if self.owner is None:
                await config.authz.require(user, self.capability, org)
                return None
            owner = self.owner
            return await config.authz.require_owned(
                user, self.capability, org, lambda: owner(request, user)
            )
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from exc


def _org_in_tenant(request: Request, org: str | None) -> str | None:
    """With tenancy on, the org decided in is the request's tenant. An org named by the request
    (a header, a path) that is not its tenant is refused: the grants of one tenant must never
    authorize work done in a session scoped to another."""
    tenant = _tenant_of(request)
    if tenant is None or org is None:
        return org if tenant is None else tenant
    if org != tenant:
        raise HTTPException(403, "this request's organization is not its tenant")
    return org


def require(capability: str, *, owner: OwnerResolver | None = None) -> Requirement:
    """``Depends(require("trade:approve"))``; with ``owner=``, ``:any`` or owned ``:own``."""
    return Requirement(capability, owner)


def _walk(dependant: Any) -> Iterator[Requirement]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Requirement):
            yield dep.call
        yield from _walk(dep)


def _requirements(app: FastAPI) -> Iterator[Requirement]:
    walk = _walk

    def routes(container: Any) -> Iterator[Requirement]:
        for depends in getattr(container, "dependencies", None) or ():
            if isinstance(getattr(depends, "dependency", None), Requirement):
                yield depends.dependency
        for route in getattr(container, "routes", ()):
            if isinstance(route, APIRoute):
                yield from walk(route.dependant)
            # Newer FastAPI keeps included routers as branches (``original_router``);
            # mounts keep theirs in ``routes``.
            yield from routes(getattr(route, "original_router", None) or route)

    yield from routes(app.router)


def check_routes(app: FastAPI, authz: Authz) -> list[str]:
    """Every capability the routes require, each checked against the registry (raises)."""
    names = sorted({n for req in _requirements(app) for n in req.names()})
    for name in names:
        authz.registry.check(name)
    return names


# How FastAPI renders an HTTPException unless the app installs its own handler.
FASTAPI_ERROR_CONTENT: Mapping[str, Any] = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}},
        }
    }
}


def _guarded_operations(app: FastAPI) -> set[tuple[str, str]]:
    """``(path template, method)`` of every route with a ``require()`` dependency."""
    # FastAPI >= 0.13x keeps included routers as branches; it then lists their routes, with
    # the prefixes applied, through ``iter_route_contexts``. Older versions list them flat.
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    routes = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    guarded: set[tuple[str, str]] = set()
    for route in routes:
        dependant = getattr(route, "dependant", None)
        path = getattr(route, "path_format", None)
        if dependant is None or path is None or next(_walk(dependant), None) is None:
            continue
        guarded.update((path, method.lower()) for method in getattr(route, "methods", ()) or ())
    return guarded


def _document(app: FastAPI, content: Mapping[str, Any]) -> None:
    """Declare 401 and 403 on the operations ``require()`` guards, in the OpenAPI document."""
    answers = {
        "401": {"description": "Not authenticated", "content": dict(content)},
        "403": {"description": "Missing capability", "content": dict(content)},
    }
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            paths = generate().get("paths", {})
            for path, method in _guarded_operations(app):
                operation = paths.get(path, {}).get(method)
                if operation is not None:
                    responses = operation.setdefault("responses", {})
                    for status, answer in answers.items():
                        responses.setdefault(status, copy.deepcopy(answer))
        assert app.openapi_schema is not None  # FastAPI caches the document it builds
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(
    app: FastAPI,
    authz: Authz,
    *,
    user: UserSource,
    org: OrgSource,
    correlation_header: str = "X-Request-ID",
    error_content: Mapping[str, Any] = FASTAPI_ERROR_CONTENT,
) -> None:
    """Attach ``authz`` to ``app``, check the routes declared so far, and declare the 401/403
    answers of guarded routes in the OpenAPI document (``error_content``: their media types
    and schemas, as the app renders an ``HTTPException``)."""
    app.state.tether_authz = AuthzConfig(authz, user, org, correlation_header)
    check_routes(app, authz)
    _document(app, error_content)
