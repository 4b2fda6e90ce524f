"""The event catalog: typed events validated by ``add_event`` and upcast for consumers.

Run: ``.venv/bin/python examples/catalog_events.py`` (SQLite, no services needed).
``tether catalog --module examples.catalog_events:catalog --asyncapi events.yaml`` documents
the same catalog. ``docs/catalog.md`` quotes this file; ``tests/integration/test_examples.py``
runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tether.catalog import EventCatalog
from tether.consume import Consumer
from tether.consume.memory import MemorySource
from tether.core.envelope import Event, make_event
from tether.core.errors import EventValidationError
from tether.outbox import ProducerPolicy, add_event_sync, configure
from tether.outbox.inbox import Inbox
from tether.store.sqlite.ddl import migrate_sync

# --- the catalog: one pydantic model per (type, version) ------------------------------------
catalog = EventCatalog(title="Shop events", version="1.0.0", unknown="refuse")


class Currency(StrEnum):
    EUR = "EUR"
    USD = "USD"


@catalog.event("OrderPlaced", version=1, topic="order", example={"order_id": "o-1", "total": 12})
class OrderPlacedV1(BaseModel):
    """An order was placed (total in whole units)."""

    order_id: str
    total: int


@catalog.event(
    "OrderPlaced",
    version=2,
    topic="order",
    example={"order_id": "o-1", "total_cents": 1200, "currency": "EUR"},
)
class OrderPlaced(BaseModel):
    """An order was placed."""

    order_id: str
    total_cents: int
    currency: Currency = Currency.EUR


@catalog.upcaster("OrderPlaced", from_version=1)
def order_placed_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": payload["order_id"], "total_cents": payload["total"] * 100}


class PaymentCaptured(BaseModel):
    """A payment went through."""

    order_id: str
    amount_cents: int


catalog.register(
    model=PaymentCaptured,
    type="PaymentCaptured",
    version=1,
    topic="payment",
    example=PaymentCaptured(order_id="o-1", amount_cents=1200),
)


# --- producing: add_event validates registered payloads before writing ---------------------
def produce(db: sqlite3.Connection) -> None:
    configure(ProducerPolicy(catalog=catalog))
    ref = add_event_sync(db, "OrderPlaced", {"order_id": "o-1", "total_cents": 1200})
    print("written:", ref.event.type, f"v{ref.event.version}", ref.event.topic, ref.event.payload)
    try:
        add_event_sync(db, "OrderPlaced", {"order_id": "o-2", "total_cents": "lots"})
    except EventValidationError as exc:
        print("refused:", exc)
    try:
        add_event_sync(db, "OrderPlacd", {"order_id": "o-3"})
    except EventValidationError as exc:
        print("refused:", exc)
    db.commit()


# --- consuming: older versions reach the handler in the current shape -----------------------
@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[object]:
    yield object()  # this example's handler writes nothing; see docs/consume.md for a real one


class MemoryInbox(Inbox):
    """Remembers handled ids in memory (a real consumer uses the database's inbox table)."""

    def __init__(self) -> None:
        super().__init__("example")
        self.seen: set[str] = set()

    async def first_time(self, target: object, event_id: Any) -> bool:
        fresh = str(event_id) not in self.seen
        self.seen.add(str(event_id))
        return fresh


async def consume() -> None:
    source = MemorySource("shipping")
    source.publish(make_event("OrderPlaced", {"order_id": "o-old", "total": 3}, version=1))
    handled: list[tuple[int, Any]] = []

    async def handle(event: Event, tx: object) -> None:
        handled.append((event.version, event.payload))

    consumer = Consumer(
        source, handle, transaction=transaction, inbox=MemoryInbox(), catalog=catalog
    )
    await consumer.run_once()
    print("handled:", handled)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "shop.db")
        migrate_sync(db)
        try:
            produce(db)
        finally:
            db.close()
    asyncio.run(consume())


if __name__ == "__main__":
    main()
