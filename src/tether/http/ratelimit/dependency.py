"""Per-route rate limits as a FastAPI dependency, so they can run after authentication.

limiter = RateLimiter(RedisRateLimitStore(redis))
install(app)  # renders RateLimitExceeded as the 429 JSON body
@app.post("/quotes", dependencies=[Depends(RateLimit(limiter, Rule(by_user(), STRICT)))])
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.responses import Response as StarletteResponse

from tether.http.ratelimit import headers
from tether.http.ratelimit.limiter import (
    RateLimiter,
    RateLimitExceeded,
    RateLimitUnavailable,
    Rule,
    Verdict,
)
from tether.http.ratelimit.responses import rejection


class RateLimit:
    def __init__(self, limiter: RateLimiter, *rules: Rule) -> None:
        self.limiter = limiter
        self.rules = rules

    async def __call__(self, request: Request, response: Response) -> None:
        verdict = await self.limiter.check(request.scope, self.rules)
        if verdict.denied is not None:
            raise RateLimitExceeded(verdict)
        if self.limiter.refuses(verdict):
            raise RateLimitUnavailable
        for name, value in headers.response_headers(verdict.decisions):
            response.headers[name.decode()] = value.decode()


def _render(verdict: Verdict) -> StarletteResponse:
    status, body, extra = rejection(verdict)
    response = StarletteResponse(body, status_code=status, media_type="application/json")
    for name, value in extra:
        response.headers[name.decode()] = value.decode()
    return response


async def _exceeded(request: Request, exc: Exception) -> StarletteResponse:
    assert isinstance(exc, RateLimitExceeded)
    return _render(exc.verdict)


async def _unavailable(request: Request, exc: Exception) -> StarletteResponse:
    return _render(Verdict(store_failed=True))


def install(app: FastAPI) -> None:
    """Register the handlers that turn the dependency's exceptions into 429 / 503 answers."""
    app.add_exception_handler(RateLimitExceeded, _exceeded)
    app.add_exception_handler(RateLimitUnavailable, _unavailable)
