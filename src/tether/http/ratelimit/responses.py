"""The 429 and fail-closed 503 answers, as raw ASGI messages (no framework needed)."""

from __future__ import annotations

from starlette.types import Send

from tether.http.problem import send_bytes
from tether.http.ratelimit import headers
from tether.http.ratelimit.limiter import Verdict

_JSON = b"application/json"


def rejection(verdict: Verdict) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers for a refused request."""
    if verdict.denied is None:  # store down, fail-closed
        body = headers.rejection_body(
            "rate_limiter_unavailable", "rate limiting is unavailable; retry shortly", 1
        )
        return 503, body, [(b"retry-after", b"1")]
    retry = headers.retry_after_seconds(verdict.denied)
    body = headers.rejection_body(
        "rate_limit_exceeded",
        f"limit {verdict.denied.limit.name!r} exceeded; retry in {retry} s",
        retry,
    )
    extra = [(b"retry-after", str(retry).encode()), *headers.response_headers(verdict.decisions)]
    return 429, body, extra


async def send_rejection(send: Send, verdict: Verdict) -> None:
    status, body, extra = rejection(verdict)
    await send_bytes(send, status, body, _JSON, extra)
