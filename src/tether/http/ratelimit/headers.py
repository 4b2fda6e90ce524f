"""IETF RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10) and the
429 body. Policies are a structured-field List: ``"standard";q=100;w=60``, then
``RateLimit: "standard";r=42;t=17`` with the remaining quota and seconds to reset."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import orjson

from tether.http.ratelimit.algorithms import Decision, Limit


@functools.cache
def _policy_item(limit: Limit) -> str:
    return f'"{limit.name}";q={limit.limit};w={math.ceil(limit.period)}'


def policy_header(decisions: Sequence[Decision]) -> bytes:
    return ", ".join(_policy_item(d.limit) for d in decisions).encode()


def ratelimit_header(decisions: Sequence[Decision]) -> bytes:
    items = (f'"{d.limit.name}";r={d.remaining};t={math.ceil(d.reset_after)}' for d in decisions)
    return ", ".join(items).encode()


def response_headers(decisions: Sequence[Decision]) -> list[tuple[bytes, bytes]]:
    if not decisions:
        return []
    return [
        (b"ratelimit-policy", policy_header(decisions)),
        (b"ratelimit", ratelimit_header(decisions)),
    ]


def retry_after_seconds(decision: Decision) -> int:
    return max(1, math.ceil(decision.retry_after))


def rejection_body(error: str, message: str, retry_after: int) -> bytes:
    return orjson.dumps({"error": error, "message": message, "retryAfter": retry_after})
