"""Prometheus counters of the rate limiter (registered once, on the default registry)."""

from __future__ import annotations

from prometheus_client import Counter

STORE_ERRORS = Counter(
    "tether_ratelimit_store_errors_total",
    "Rate-limit decisions the store could not make, by the failure policy applied.",
    ["policy"],
)
REJECTED = Counter(
    "tether_ratelimit_rejected_total", "Requests refused with 429, by limit name.", ["limit"]
)
