"""Rate limiting: sliding-window counter or GCRA, memory or Redis, middleware or dependency."""

from tether.http.ratelimit.algorithms import Algorithm, Decision, Limit
from tether.http.ratelimit.keys import by_api_key, by_ip, by_tenant, by_user
from tether.http.ratelimit.limiter import (
    FailureMode,
    RateLimiter,
    RateLimitExceeded,
    RateLimitUnavailable,
    Rule,
    Verdict,
)
from tether.http.ratelimit.middleware import RateLimitMiddleware
from tether.http.ratelimit.presets import API_KEY, PRESETS, RELAXED, STANDARD, STRICT
from tether.http.ratelimit.stores.memory import MemoryRateLimitStore

__all__ = [
    "API_KEY",
    "PRESETS",
    "RELAXED",
    "STANDARD",
    "STRICT",
    "Algorithm",
    "Decision",
    "FailureMode",
    "Limit",
    "MemoryRateLimitStore",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "RateLimitUnavailable",
    "RateLimiter",
    "Rule",
    "Verdict",
    "by_api_key",
    "by_ip",
    "by_tenant",
    "by_user",
]
