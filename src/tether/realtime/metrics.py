"""The gateway's counters (no-ops without the ``metrics`` extra)."""

from __future__ import annotations

from tether.ops.instruments import counter

DISCONNECTS = counter(
    "tether_realtime_disconnects_total",
    "Connections the gateway closed, by reason (slow: a client that does not read its messages).",
    ["reason"],
)
