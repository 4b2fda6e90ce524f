"""The durable work-item engine: enqueue, claim under a lease, retry, dead-letter, replay.

Adapters: :mod:`tether.queue.postgres` (asyncpg) and :mod:`tether.queue.sqlite` (aiosqlite).
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
from tether.queue.spec import ITEMS, OUTBOX, TableSpec

__all__ = [
    "ITEMS",
    "OUTBOX",
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
