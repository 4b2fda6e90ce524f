"""The relay's metrics, defined once per process (no-ops without the ``metrics`` extra)."""

from __future__ import annotations

from tether.ops.instruments import counter, histogram

RELAY_EVENTS = counter(
    "tether_relay_events_total",
    "Outbox events handled by the relay, by outcome (published, retried, deferred, dead).",
    ["outcome"],
)
RELAY_BATCH_SECONDS = histogram(
    "tether_relay_batch_seconds",
    "Time to claim, publish and settle one relay batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
RELAY_ERRORS = counter(
    "tether_relay_errors_total", "Relay loop iterations that failed (store or unexpected errors)."
)
SINK_UNAVAILABLE = counter(
    "tether_sink_unavailable_total", "Times a sink reported its target unreachable.", ["sink"]
)
