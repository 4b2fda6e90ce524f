"""IETF RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10) and the
429 body. Policies are a structured-field List: ``"standard";q=100;w=60``, then
``RateLimit: "standard";r=42;t=17`` with the remaining quota and seconds to reset.

Every number of seconds a response carries comes from :func:`seconds_until_allowed`, so the
``t`` of a refused policy and ``Retry-After`` always agree."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import orjson

from tether.http.ratelimit.algorithms import Decision, Limit


@functools.cache
def _policy_item(name: str, limit: Limit) -> str:
    return f'"{name}";q={limit.limit};w={math.ceil(limit.period)}'


def seconds_until_allowed(decision: Decision) -> int:
    """Whole seconds a client should wait: until this request would be admitted when refused
    (at least 1), else until the quota is whole again."""
    if decision.allowed:
        return math.ceil(decision.reset_after)
    return max(1, math.ceil(decision.retry_after))


def policy_header(decisions: Sequence[Decision]) -> bytes:
    return ", ".join(_policy_item(d.policy_name, d.limit) for d in decisions).encode()


def ratelimit_header(decisions: Sequence[Decision]) -> bytes:
    items = (f'"{d.policy_name}";r={d.remaining};t={seconds_until_allowed(d)}' for d in decisions)
    return ", ".join(items).encode()


def response_headers(decisions: Sequence[Decision]) -> list[tuple[bytes, bytes]]:
    if not decisions:
        return []
    return [
        (b"ratelimit-policy", policy_header(decisions)),
        (b"ratelimit", ratelimit_header(decisions)),
    ]


def retry_after_seconds(decision: Decision) -> int:
    return seconds_until_allowed(decision)


def rejection_body(error: str, message: str, retry_after: int) -> bytes:
    return orjson.dumps({"error": error, "message": message, "retryAfter": retry_after})
