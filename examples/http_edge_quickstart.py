"""Idempotency-Key and rate limiting in front of a FastAPI app, in one process, no services.

Run: ``.venv/bin/python examples/http_edge_quickstart.py``. It prints what a retrying client
sees; ``tests/integration/test_examples.py`` checks the output.
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
from fastapi import Depends, FastAPI

from tether.http.idempotency import (
    IdempotencyMiddleware,
    IdempotencyPolicy,
    MemoryIdempotencyStore,
    Mode,
    RouteRule,
)
from tether.http.ratelimit import (
    STANDARD,
    STRICT,
    MemoryRateLimitStore,
    RateLimiter,
    RateLimitMiddleware,
    Rule,
    by_api_key,
    by_ip,
)
from tether.http.ratelimit.dependency import RateLimit, install

payment_ids = itertools.count(1)


def build_app() -> FastAPI:
    app = FastAPI()
    limiter = RateLimiter(MemoryRateLimitStore())
    install(app)  # RateLimitExceeded -> 429 {"error", "message", "retryAfter"}

    # A per-route limit, as a dependency: it runs after any authentication dependency.
    @app.post(
        "/payments",
        status_code=201,
        dependencies=[Depends(RateLimit(limiter, Rule(by_api_key(), STRICT)))],
    )
    async def pay(body: dict[str, int]) -> dict[str, int]:
        return {"payment": next(payment_ids), "amount": body["amount"]}

    # Middleware is added innermost first: requests meet the rate limit, then Idempotency-Key.
    policy = IdempotencyPolicy(routes=(RouteRule("/payments", Mode.REQUIRED),))
    app.add_middleware(IdempotencyMiddleware, store=MemoryIdempotencyStore(), policy=policy)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=[Rule(by_ip(), STANDARD)])
    return app


async def main() -> None:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        headers = {"Idempotency-Key": '"pay-2026-0001"', "X-API-Key": "k1"}
        first = await client.post("/payments", json={"amount": 42}, headers=headers)
        retry = await client.post("/payments", json={"amount": 42}, headers=headers)
        print("first:", first.status_code, first.json())
        print(
            "retry:",
            retry.status_code,
            retry.json(),
            "replayed:",
            retry.headers["idempotent-replayed"],
        )
        print("RateLimit-Policy:", first.headers["ratelimit-policy"])

        changed = await client.post("/payments", json={"amount": 43}, headers=headers)
        print("same key, other body:", changed.status_code, changed.json()["title"])
        missing = await client.post("/payments", json={"amount": 1}, headers={"X-API-Key": "k1"})
        print("no key:", missing.status_code, missing.headers["content-type"])

        statuses = []
        for n in range(12):
            keyed = {"Idempotency-Key": f"burst-{n}", "X-API-Key": "k2"}
            response = await client.post("/payments", json={"amount": n}, headers=keyed)
            statuses.append(response.status_code)
        print(
            "12 payments under the strict preset:",
            statuses.count(201),
            "made,",
            statuses.count(429),
            "refused",
        )
        print("429 body:", sorted(response.json()), "Retry-After:", response.headers["retry-after"])


if __name__ == "__main__":
    asyncio.run(main())
