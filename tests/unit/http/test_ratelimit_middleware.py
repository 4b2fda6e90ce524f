"""Rate-limit middleware and dependency behaviour, on the memory store and a dead Redis."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Scope

from tether.core.errors import StoreError
from tether.http.clientip import ClientIPResolver
from tether.http.ratelimit import (
    API_KEY,
    PRESETS,
    STANDARD,
    STRICT,
    Algorithm,
    Decision,
    FailureMode,
    Limit,
    MemoryRateLimitStore,
    RateLimiter,
    RateLimitMiddleware,
    Rule,
    by_api_key,
    by_ip,
    by_tenant,
    by_user,
)
from tether.http.ratelimit.dependency import RateLimit, install
from tether.http.ratelimit.stores.redis import RedisRateLimitStore


async def ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


def app_with(limiter: RateLimiter, rules: Sequence[Rule]) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", ok, methods=["GET", "POST"])])
    wrapped = RateLimitMiddleware(app, limiter, rules)
    transport = httpx.ASGITransport(app=wrapped, client=("203.0.113.5", 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_redis() -> Redis:
    return Redis(
        host="127.0.0.1", port=closed_port(), socket_connect_timeout=0.2, socket_timeout=0.2
    )


def test_presets() -> None:
    assert (STRICT.limit, STRICT.period) == (10, 60)
    assert (STANDARD.limit, STANDARD.period) == (100, 60)
    assert (PRESETS["relaxed"].limit, PRESETS["relaxed"].period) == (1000, 60)
    assert (API_KEY.limit, API_KEY.period) == (10_000, 3600)


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_429_body_and_headers(algorithm: Algorithm) -> None:
    limiter = RateLimiter(MemoryRateLimitStore())
    async with app_with(limiter, [Rule(by_ip(), Limit("tiny", 2, 60), algorithm)]) as c:
        first = await c.get("/")
        assert first.headers["ratelimit-policy"] == '"tiny";q=2;w=60'
        assert first.headers["ratelimit"].startswith('"tiny";r=1;t=')
        await c.get("/")
        refused = await c.get("/")
    assert refused.status_code == 429
    body = refused.json()
    assert set(body) == {"error", "message", "retryAfter"}
    assert body["retryAfter"] == int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit"].startswith('"tiny";r=0;')


async def test_keys_by_api_key_user_and_tenant() -> None:
    limiter = RateLimiter(MemoryRateLimitStore())
    one = Limit("one", 1, 60)
    rules = [Rule(by_api_key(), one)]
    async with app_with(limiter, rules) as c:
        assert (await c.get("/", headers={"x-api-key": "a"})).status_code == 200
        assert (await c.get("/", headers={"x-api-key": "b"})).status_code == 200
        assert (await c.get("/", headers={"x-api-key": "a"})).status_code == 429
        # No API key: the rule does not apply.
        assert (await c.get("/")).status_code == 200

    scope: Scope = {"state": {"principal": "u1", "tenant_id": "t1"}}
    assert by_user()(scope) == "user:u1"
    assert by_tenant()(scope) == "tenant:t1"
    assert by_user()({}) is None and by_tenant()({}) is None


async def test_limit_chosen_per_request_by_plan() -> None:
    plans = {"free": Limit("free", 1, 60), "pro": Limit("pro", 3, 60)}

    def by_plan(scope: Scope) -> Limit | None:
        plan = dict(scope["headers"]).get(b"x-plan", b"free").decode()
        return plans[plan]

    limiter = RateLimiter(MemoryRateLimitStore())
    async with app_with(limiter, [Rule(by_api_key(), by_plan)]) as c:
        free = [(await c.get("/", headers={"x-api-key": "f"})).status_code for _ in range(2)]
        pro = [
            (await c.get("/", headers={"x-api-key": "p", "x-plan": "pro"})).status_code
            for _ in range(4)
        ]
    assert free == [200, 429]
    assert pro == [200, 200, 200, 429]


async def test_forwarded_for_counts_only_through_trusted_proxies() -> None:
    limiter = RateLimiter(MemoryRateLimitStore())
    rule = Rule(by_ip(ClientIPResolver(("10.0.0.0/8",))), Limit("ip", 1, 60))
    app = Starlette(routes=[Route("/", ok)])
    mw = RateLimitMiddleware(app, limiter, [rule])
    # The direct peer is not trusted: rotating X-Forwarded-For does not escape the limit.
    spoofer = httpx.ASGITransport(app=mw, client=("198.51.100.1", 1))
    async with httpx.AsyncClient(transport=spoofer, base_url="http://t") as c:
        codes = [
            (await c.get("/", headers={"x-forwarded-for": f"1.1.1.{i}"})).status_code
            for i in range(3)
        ]
    assert codes == [200, 429, 429]
    proxy = httpx.ASGITransport(app=mw, client=("10.0.0.1", 1))
    async with httpx.AsyncClient(transport=proxy, base_url="http://t") as c:
        codes = [
            (await c.get("/", headers={"x-forwarded-for": f"2.2.2.{i}"})).status_code
            for i in range(3)
        ]
    assert codes == [200, 200, 200]


def errors_counted(policy: str) -> float:
    value = REGISTRY.get_sample_value("tether_ratelimit_store_errors_total", {"policy": policy})
    return value or 0.0


@pytest.mark.parametrize(("mode", "status"), [(FailureMode.OPEN, 200), (FailureMode.CLOSED, 503)])
async def test_unreachable_redis_follows_the_policy_never_500(
    mode: FailureMode, status: int
) -> None:
    client = dead_redis()
    limiter = RateLimiter(RedisRateLimitStore(client), on_store_error=mode, timeout=0.1)
    before = errors_counted(mode.value)
    try:
        async with app_with(limiter, [Rule(by_ip(), STANDARD)]) as c:
            responses = [await c.get("/") for _ in range(3)]
    finally:
        await client.aclose()
    assert [r.status_code for r in responses] == [status] * 3
    if mode is FailureMode.CLOSED:
        assert responses[0].json()["error"] == "rate_limiter_unavailable"
        assert responses[0].headers["retry-after"] == "1"
    assert errors_counted(mode.value) == before + 3


def fastapi_app(limiter: RateLimiter) -> FastAPI:
    app = FastAPI()
    install(app)

    async def authenticate(request: Request) -> str:
        user = request.headers.get("x-user", "anon")
        request.state.principal = user
        return user

    per_user = RateLimit(limiter, Rule(by_user(), Limit("per_user", 2, 60)))

    @app.post("/quotes", dependencies=[Depends(authenticate), Depends(per_user)])
    async def quote() -> dict[str, bool]:
        return {"ok": True}

    return app


async def test_fastapi_dependency_runs_after_authentication() -> None:
    app = fastapi_app(RateLimiter(MemoryRateLimitStore()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        alice = [await c.post("/quotes", headers={"x-user": "alice"}) for _ in range(3)]
        bob = await c.post("/quotes", headers={"x-user": "bob"})
    assert [r.status_code for r in alice] == [200, 200, 429]
    assert alice[0].headers["ratelimit-policy"] == '"per_user";q=2;w=60'
    assert alice[2].json()["error"] == "rate_limit_exceeded"
    assert "retry-after" in alice[2].headers
    assert bob.status_code == 200


async def test_fastapi_dependency_fail_closed_is_503() -> None:
    client = dead_redis()
    limiter = RateLimiter(
        RedisRateLimitStore(client), on_store_error=FailureMode.CLOSED, timeout=0.1
    )
    try:
        app = fastapi_app(limiter)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.post("/quotes", headers={"x-user": "alice"})
    finally:
        await client.aclose()
    assert response.status_code == 503


async def test_websocket_and_lifespan_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: object, send: object) -> None:
        seen.append(scope["type"])

    mw = RateLimitMiddleware(inner, RateLimiter(MemoryRateLimitStore()), [Rule(by_ip(), STRICT)])
    await mw({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


class FlakyStore:
    def __init__(self) -> None:
        self.calls = 0
        self.down = True

    async def hit(self, key: str, limit: Limit, algorithm: Algorithm, cost: int = 1) -> Decision:
        self.calls += 1
        if self.down:
            raise StoreError("down")
        return await MemoryRateLimitStore().hit(key, limit, algorithm, cost)


async def test_after_a_failure_the_store_rests_for_the_cooldown() -> None:
    store = FlakyStore()
    limiter = RateLimiter(store, cooldown=0.05)
    rules = [Rule(by_ip(), STRICT)]
    scope: Scope = {"type": "http", "client": ("1.2.3.4", 1), "headers": []}
    assert (await limiter.check(scope, rules)).store_failed
    assert (await limiter.check(scope, rules)).store_failed
    assert store.calls == 1  # the second check did not wait on the dead store
    store.down = False
    async with asyncio.timeout(5):
        while (await limiter.check(scope, rules)).store_failed:
            await asyncio.sleep(0.01)
    assert store.calls == 2


def test_user_identity_from_starlette_users() -> None:
    from starlette.authentication import BaseUser, SimpleUser, UnauthenticatedUser

    class NoIdentity(BaseUser):
        @property
        def is_authenticated(self) -> bool:
            return True

        @property
        def display_name(self) -> str:
            return "dana"

    assert by_user()({"user": SimpleUser("carol")}) == "user:carol"
    assert by_user()({"user": UnauthenticatedUser()}) is None
    assert by_user()({"user": NoIdentity()}) == "user:dana"
