"""The rate limiter's answers (429, and 503 when fail-closed) in the OpenAPI document.

app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=rules)
document(app, limiter)  # every operation declares them, with the RateLimit fields
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tether.http import openapi
from tether.http.ratelimit.limiter import FailureMode, RateLimiter

if TYPE_CHECKING:
    from fastapi import FastAPI

_BODY = {
    "type": "object",
    "required": ["error", "message", "retryAfter"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "retryAfter": {"type": "integer", "minimum": 1},
    },
}
_TEXT = {"schema": {"type": "string"}}
_HEADERS = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
    "RateLimit-Policy": {"description": "the quota policies that applied", **_TEXT},
    "RateLimit": {"description": "remaining quota and seconds until it resets", **_TEXT},
}


def _response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _HEADERS,
        "content": {"application/json": {"schema": _BODY}},
    }


def document(
    app: FastAPI, limiter: RateLimiter, paths: Callable[[str], bool] = lambda path: True
) -> None:
    """Declare the limiter's answers on every operation whose path template ``paths`` accepts."""
    answers = [(429, _response("Rate limit exceeded; retry after Retry-After seconds"))]
    if limiter.on_store_error is FailureMode.CLOSED:
        answers.append((503, _response("Rate limiting unavailable (fail-closed)")))

    def describe(doc: openapi.Document) -> None:
        for path, _, operation in openapi.operations(doc):
            if paths(path):
                for status, response in answers:
                    openapi.add_response(operation, status, response)

    openapi.extend(app, describe)
