"""Per-guard metrics, through the ops port (no-ops without the ``metrics`` extra).

The ``guard`` label is the guard's ``metrics_name`` (its name unless given), so a caller
with many guards (one per webhook endpoint) can group them to keep the label set small.
"""

from __future__ import annotations

from tether.ops.instruments import counter, histogram

GUARD_CALLS = counter(
    "tether_guard_calls_total",
    "Guarded calls by outcome: success, failure, timeout, open (refused by the circuit), "
    "bulkhead (refused, bulkhead full).",
    ["guard", "outcome"],
)
GUARD_FALLBACKS = counter(
    "tether_guard_fallbacks_total", "Calls answered by the guard's fallback.", ["guard"]
)
GUARD_CALL_SECONDS = histogram(
    "tether_guard_call_seconds",
    "Duration of guarded calls that ran (successes, failures and timeouts).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    labels=["guard"],
)
GUARD_TRANSITIONS = counter(
    "tether_guard_transitions_total",
    "Circuit state changes seen by this process, by the state entered.",
    ["guard", "state"],
)
GUARD_STORE_ERRORS = counter(
    "tether_guard_store_errors_total",
    "Times the shared breaker store did not answer and local state decided.",
)
