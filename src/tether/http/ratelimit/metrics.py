"""The rate limiter's counters (no-ops without the ``metrics`` extra)."""

from __future__ import annotations

from tether.ops.instruments import counter

STORE_ERRORS = counter(
    "tether_ratelimit_store_errors_total",
    "Rate-limit decisions the store could not make, by the failure policy applied.",
    ["policy"],
)
REJECTED = counter(
    "tether_ratelimit_rejected_total", "Requests refused with 429, by limit name.", ["limit"]
)
