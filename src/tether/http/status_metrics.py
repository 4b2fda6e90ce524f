"""Responses counted by status class, for the 5xx-rate alert (no-ops without ``metrics``).

A pure ASGI middleware: it reads the status of ``http.response.start`` and counts it once per
request. A request whose app raised before starting a response counts as ``5xx`` (the server
answers 500), so an alert on the 5xx rate sees crashes too. Labels are the status class and
the method only: a path or route label would let clients create series at will.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.ops.instruments import counter

RESPONSES = counter(
    "tether_http_responses_total",
    "HTTP responses by status class (2xx, 3xx, 4xx, 429, 5xx) and method.",
    ["status_class", "method"],
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def status_class(status: int) -> str:
    if status == 429:  # told apart from other 4xx: the rate limits' own alert reads it
        return "429"
    return f"{min(max(status // 100, 1), 5)}xx"


class ResponseStatusMetrics:
    """Count every HTTP response of ``app`` in ``tether_http_responses_total``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "other"
        started: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not started:
                started.append(message["status"])
                RESPONSES.labels(status_class(message["status"]), method).inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except BaseException:
            if not started:
                RESPONSES.labels("5xx", method).inc()
            raise
