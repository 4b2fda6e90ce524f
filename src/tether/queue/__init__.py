"""The durable work-item engine: enqueue, claim under a lease, retry, dead-letter, replay.

Adapters: :mod:`tether.queue.postgres` (asyncpg) and :mod:`tether.queue.sqlite` (aiosqlite).
The outbox's table spec lives with the outbox (:mod:`tether.outbox.table`).
"""

from tether.queue.ports import (
    Claimed,
    ErrorRecord,
    FilterError,
    InvalidItemError,
    Item,
    ItemAdmin,
    ItemFilter,
    ItemState,
    NewItem,
    QueueStats,
    WorkQueue,
)
from tether.queue.spec import ITEMS, TableSpec

__all__ = [
    "ITEMS",
    "Claimed",
    "ErrorRecord",
    "FilterError",
    "InvalidItemError",
    "Item",
    "ItemAdmin",
    "ItemFilter",
    "ItemState",
    "NewItem",
    "QueueStats",
    "TableSpec",
    "WorkQueue",
]
