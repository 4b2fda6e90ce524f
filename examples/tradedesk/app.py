"""The app factory. Middleware, outermost first: a per-IP rate limit (so failed
authentication is counted before any key is checked), API-key authentication, the per-plan
rate limit, Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from examples.tradedesk import authz as tradedesk_authz
from examples.tradedesk import db, errors, live, routes
from examples.tradedesk.auth import ApiKeyAuth
from examples.tradedesk.settings import Settings
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from starlette.types import Scope

from tether.http.clientip import ClientIPResolver
from tether.http.idempotency import (
    IdempotencyMiddleware,
    IdempotencyPolicy,
    IdempotencyStore,
    MemoryIdempotencyStore,
    Mode,
    RouteRule,
)
from tether.http.idempotency import openapi as idempotency_openapi
from tether.http.idempotency.stores.postgres import PostgresIdempotencyStore
from tether.http.ratelimit import (
    PRESETS,
    FailureMode,
    Limit,
    MemoryRateLimitStore,
    RateLimiter,
    RateLimitMiddleware,
    Rule,
    by_ip,
    by_user,
)
from tether.http.ratelimit import openapi as ratelimit_openapi
from tether.http.ratelimit.dependency import install as install_rate_limit_errors
from tether.http.ratelimit.stores import RateLimitStore
from tether.http.ratelimit.stores.redis import RedisRateLimitStore
from tether.http.status_metrics import ResponseStatusMetrics
from tether.store.postgres.pooler import sqlalchemy_connect_args

OPEN_PATHS = ("/health", "/docs", "/openapi.json", "/live")


def plan_limit(scope: Scope) -> Limit | None:
    """Each API client's limit comes from its plan (set by authentication)."""
    plan = (scope.get("state") or {}).get("plan")
    return PRESETS.get(plan) if plan else None


def idempotency_store(engine: AsyncEngine) -> IdempotencyStore:
    # Postgres: records commit in the handler's transaction. SQLite demo: one process, memory.
    if engine.dialect.name == "postgresql":
        return PostgresIdempotencyStore(engine)
    return MemoryIdempotencyStore()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    pooled = sqlalchemy_connect_args(settings.database_url, settings.database_pooler)
    engine = create_async_engine(settings.database_url, connect_args=pooled)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    store: RateLimitStore = RedisRateLimitStore(redis) if redis else MemoryRateLimitStore()
    mode = FailureMode.CLOSED if settings.fail_closed else FailureMode.OPEN
    limiter = RateLimiter(store, on_store_error=mode)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.set_up(engine, lambda: tradedesk_authz.seed(app, settings.api_keys))
        await tradedesk_authz.watch(app)
        yield
        await app.state.realtime.stop()
        await tradedesk_authz.stop(app)
        await engine.dispose()
        if redis is not None:
            await redis.aclose()

    app = FastAPI(title="Tradedesk", lifespan=lifespan)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.state.engine = engine
    app.state.limiter = limiter
    install_rate_limit_errors(app)
    errors.install(app)
    for router in routes.ALL:
        app.include_router(router)
    app.include_router(tradedesk_authz.router)
    live.install(app, settings.redis_url)  # /live page, /realtime gateway, /realtime-token
    # After the routers: it checks their capabilities.
    tradedesk_authz.attach(app, engine, pooler=settings.database_pooler)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    policy = IdempotencyPolicy(routes=(RouteRule("/matches", Mode.REQUIRED),))
    app.add_middleware(IdempotencyMiddleware, store=idempotency_store(engine), policy=policy)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=[Rule(by_user(), plan_limit)])
    app.add_middleware(ApiKeyAuth, keys=settings.api_keys, open_paths=OPEN_PATHS)
    client_ip = by_ip(ClientIPResolver(settings.trusted_proxies))
    per_ip = Rule(client_ip, settings.per_ip_limit, name="per-ip")
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=[per_ip])
    # Outermost, so every answer is counted, the other middleware's 401/409/429 included.
    app.add_middleware(ResponseStatusMetrics)
    # The answers the middleware gives by itself, declared in /openapi.json.
    idempotency_openapi.document(app, policy)
    ratelimit_openapi.document(app, limiter)
    return app


def demo_app() -> FastAPI:
    """SQLite file in the working directory, in-memory rate limits: no services needed."""
    return create_app(Settings())
