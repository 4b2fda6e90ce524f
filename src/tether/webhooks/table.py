"""The deliveries table as the work-item engine sees it (:class:`tether.queue.TableSpec`).

Its ``queue`` column holds the endpoint's priority (high, medium, low): the dispatcher claims
from each with the engine's own claim, in weighted shares.
"""

from __future__ import annotations

from tether.queue.spec import TableSpec

DELIVERIES = TableSpec(
    "tether_webhook_deliveries",
    has_queue_column=True,
    extra_columns=("tenant_id", "endpoint_id", "event_id", "event_type"),
)
