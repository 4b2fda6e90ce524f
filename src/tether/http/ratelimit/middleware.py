"""Rate-limit middleware: every rule that applies is checked before the app runs."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.http.ratelimit import headers
from tether.http.ratelimit.limiter import RateLimiter, Rule
from tether.http.ratelimit.responses import send_rejection


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, rules: Sequence[Rule]) -> None:
        self.app = app
        self.limiter = limiter
        self.rules = tuple(rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = await self.limiter.check(scope, self.rules)
        if self.limiter.refuses(verdict):
            await send_rejection(send, verdict)
            return
        extra = headers.response_headers(verdict.decisions)
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
