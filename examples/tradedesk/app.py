"""The app factory: middleware order is authentication -> rate limits -> Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from examples.tradedesk import authz as tradedesk_authz
from examples.tradedesk import db, routes
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
from tether.http.idempotency.stores.postgres import PostgresIdempotencyStore
from tether.http.ratelimit import (
    PRESETS,
    RELAXED,
    FailureMode,
    Limit,
    MemoryRateLimitStore,
    RateLimiter,
    RateLimitMiddleware,
    Rule,
    by_ip,
    by_user,
)
from tether.http.ratelimit.dependency import install as install_rate_limit_errors
from tether.http.ratelimit.stores import RateLimitStore
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

OPEN_PATHS = ("/health", "/docs", "/openapi.json")


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
    engine = create_async_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    store: RateLimitStore = RedisRateLimitStore(redis) if redis else MemoryRateLimitStore()
    mode = FailureMode.CLOSED if settings.fail_closed else FailureMode.OPEN
    limiter = RateLimiter(store, on_store_error=mode)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.create_schema(engine)
        await tradedesk_authz.start(app, settings.api_keys)
        yield
        await tradedesk_authz.stop(app)
        await engine.dispose()
        if redis is not None:
            await redis.aclose()

    app = FastAPI(title="Tradedesk", lifespan=lifespan)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.state.engine = engine
    app.state.limiter = limiter
    install_rate_limit_errors(app)
    for router in routes.ALL:
        app.include_router(router)
    app.include_router(tradedesk_authz.router)
    tradedesk_authz.attach(app, engine)  # after the routers: it checks their capabilities

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    policy = IdempotencyPolicy(routes=(RouteRule("/matches", Mode.REQUIRED),))
    app.add_middleware(IdempotencyMiddleware, store=idempotency_store(engine), policy=policy)
    rules = [
        Rule(by_user(), plan_limit),
        Rule(by_ip(ClientIPResolver(settings.trusted_proxies)), RELAXED),
    ]
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=rules)
    app.add_middleware(ApiKeyAuth, keys=settings.api_keys, open_paths=OPEN_PATHS)
    return app


def demo_app() -> FastAPI:
    """SQLite file in the working directory, in-memory rate limits: no services needed."""
    return create_app(Settings())
