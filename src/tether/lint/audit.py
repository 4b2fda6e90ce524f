"""The route audit: for every state-changing route of a live app, is it covered by the
Idempotency-Key middleware (and in which mode), a capability requirement and a rate limit?

It reads the app as it runs (its routes, their dependency trees, its middleware stack), never the
source. Tether's own pieces are recognised by type: :class:`IdempotencyMiddleware` (its policy
gives the mode per route), :class:`Requirement` from ``require()``, :class:`RateLimitMiddleware`
and the :class:`RateLimit` dependency. An application's own middleware or dependency can say
what it covers with a class attribute ``__tether_audit__ = "idempotency" | "capability" |
"rate_limit"``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from tether.core.errors import ConfigError

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
ASPECTS = ("idempotency", "capability", "rate_limit")
MARKER = "__tether_audit__"


@dataclass(frozen=True, slots=True)
class RouteAudit:
    method: str
    path: str
    idempotency: str | None  # "required" | "optional" | None (not covered)
    capabilities: tuple[str, ...]
    rate_limits: tuple[str, ...]
    missing: tuple[str, ...] = field(default=())

    @property
    def covered(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "covered": self.covered}


@dataclass(frozen=True, slots=True)
class Report:
    routes: tuple[RouteAudit, ...]

    @property
    def covered(self) -> int:
        return sum(r.covered for r in self.routes)

    @property
    def total(self) -> int:
        return len(self.routes)

    def summary(self) -> str:
        return f"covered {self.covered}/{self.total}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "covered": self.covered,
            "total": self.total,
            "routes": [r.as_dict() for r in self.routes],
        }


@dataclass(frozen=True, slots=True)
class _Middleware:
    cls: type
    options: dict[str, Any]


def audit(app: Any) -> Report:
    app, outer = _unwrap(app)
    stack = [*outer, *_middleware(app)]
    found: list[RouteAudit] = []
    for method, path, dependant in _routes(app):
        idem = _idempotency(stack, method, path)
        caps = tuple(dict.fromkeys(_capabilities(dependant)))
        limits = tuple(dict.fromkeys([*_middleware_limits(stack), *_dependency_limits(dependant)]))
        missing = tuple(
            name
            for name, ok in zip(ASPECTS, (idem is not None, bool(caps), bool(limits)), strict=True)
            if not ok
        )
        found.append(RouteAudit(method, path, idem, caps, limits, missing))
    found.sort(key=lambda r: (r.path, r.method))
    return Report(tuple(found))


# -- routes -----------------------------------------------------------------------------------


def _routes(app: Any) -> Iterator[tuple[str, str, Any]]:
    """(method, path template, FastAPI dependant or None) of every state-changing route."""
    for route, prefix in _walk_routes(getattr(app, "routes", ()), ""):
        path = prefix + str(getattr(route, "path_format", None) or getattr(route, "path", ""))
        dependant = getattr(route, "dependant", None)
        for method in sorted(getattr(route, "methods", None) or ()):
            if method in STATE_CHANGING:
                yield method, path, dependant


def _walk_routes(routes: Any, prefix: str) -> Iterator[tuple[Any, str]]:
    # FastAPI >= 0.13x keeps included routers as branches and lists them, prefixed, here.
    fastapi_routing = sys.modules.get("fastapi.routing")  # loaded if the app is a FastAPI one
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    items = list(iterate(routes)) if iterate is not None else list(routes)
    for item in items:
        route = getattr(item, "route", item)
        mounted = getattr(route, "routes", None)
        if mounted is not None and getattr(route, "methods", None) is None:
            inner = prefix + str(getattr(route, "path", ""))
            yield from _walk_routes(mounted, inner)  # a Mount or a sub-app
            continue
        if getattr(item, "path_format", None) is not None:
            yield _Context(route, str(item.path_format)), prefix
        else:
            yield route, prefix


@dataclass(frozen=True, slots=True)
class _Context:
    """A route with its full path template (FastAPI's route contexts carry the prefixes)."""

    route: Any
    path_format: str

    @property
    def methods(self) -> Any:
        return getattr(self.route, "methods", None)

    @property
    def dependant(self) -> Any:
        return getattr(self.route, "dependant", None)


def _calls(dependant: Any) -> Iterator[Any]:
    """Every callable in a FastAPI dependency tree (router-level dependencies are included)."""
    for dep in getattr(dependant, "dependencies", None) or ():
        yield dep.call
        yield from _calls(dep)


def _marked(obj: Any, aspect: str) -> bool:
    return getattr(obj, MARKER, None) == aspect or getattr(type(obj), MARKER, None) == aspect


# -- what covers what -------------------------------------------------------------------------


def _unwrap(app: Any) -> tuple[Any, list[_Middleware]]:
    """The app inside plain ASGI middleware instances (``Outer(app)``), and those instances."""
    outer: list[_Middleware] = []
    while not hasattr(app, "user_middleware") and hasattr(app, "app"):
        outer.append(_Middleware(type(app), dict(getattr(app, "__dict__", {}))))
        app = app.app
    return app, outer


def _middleware(app: Any) -> Iterator[_Middleware]:
    """The app's middleware as declared (``user_middleware``), outermost first."""
    for entry in getattr(app, "user_middleware", ()):
        cls = getattr(entry, "cls", None)
        if isinstance(cls, type):
            yield _Middleware(cls, dict(getattr(entry, "kwargs", None) or {}))


def _idempotency(stack: list[_Middleware], method: str, path: str) -> str | None:
    from tether.http.idempotency import IdempotencyMiddleware, IdempotencyPolicy, Mode

    for mw in stack:
        if issubclass(mw.cls, IdempotencyMiddleware):
            policy = mw.options.get("policy") or IdempotencyPolicy()
            mode, _ = policy.mode_for(method, path)
            if mode is not Mode.OFF:
                return str(mode.value)
        elif _marked(mw.cls, "idempotency"):
            return "custom"
    return None


def _capabilities(dependant: Any) -> Iterator[str]:
    try:
        from tether.authz.fastapi import Requirement
    except ImportError:  # without FastAPI there are no dependency trees either
        return
    for call in _calls(dependant):
        if isinstance(call, Requirement):
            yield from (str(getattr(n, "value", n)) for n in call.names())
        elif _marked(call, "capability"):
            yield str(getattr(call, "capability", None) or getattr(call, "__name__", "custom"))


def _middleware_limits(stack: list[_Middleware]) -> Iterator[str]:
    from tether.http.ratelimit import RateLimitMiddleware

    for mw in stack:
        if issubclass(mw.cls, RateLimitMiddleware):
            rules = mw.options.get("rules") or ()
            yield from (f"middleware:{_rule_name(r)}" for r in rules)
        elif _marked(mw.cls, "rate_limit"):
            yield f"middleware:{mw.cls.__name__}"


def _dependency_limits(dependant: Any) -> Iterator[str]:
    try:
        from tether.http.ratelimit.dependency import RateLimit
    except ImportError:
        return
    for call in _calls(dependant):
        if isinstance(call, RateLimit):
            yield from (f"dependency:{_rule_name(r)}" for r in call.rules)
        elif _marked(call, "rate_limit"):
            yield f"dependency:{getattr(call, '__name__', type(call).__name__)}"


def _rule_name(rule: Any) -> str:
    if rule.name:
        return str(rule.name)
    limit = rule.limit
    return str(getattr(limit, "name", None) or "chosen per request")


# -- the threshold ----------------------------------------------------------------------------


def parse_requirement(text: str, total: int) -> int:
    """``--require``: a count (``112``) or a share (``95%``) of the routes; the count needed."""
    value = text.strip()
    try:
        if value.endswith("%"):
            share = float(value[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return math.ceil(total * share / 100)
        count = int(value)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise ConfigError(
            f"--require {text!r}: give a number of routes (112) or a percentage (95%)"
        ) from None
