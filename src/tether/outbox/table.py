"""The outbox table as the work-item engine's admin operations see it.

Outbox rows are delivered by the relay under row locks, never leased, so the spec has no lease
columns: an adapter built on it lists, replays, purges, sweeps and counts outbox rows, and
refuses ``claim`` (a :class:`~tether.queue.worker.Worker` on it fails at once).
"""

from __future__ import annotations

from tether.queue.spec import TableSpec

OUTBOX = TableSpec(
    "tether_outbox",
    extra_columns=("type", "topic", "tenant_id", "aggregate_type", "aggregate_id"),
    leased=False,
)
