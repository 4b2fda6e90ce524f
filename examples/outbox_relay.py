"""The outbox end to end on embedded SQLite: produce in a transaction, relay, consume once.

Run: ``.venv/bin/python examples/outbox_relay.py`` (no services needed). It prints what the
consumer processed and exits non-zero if anything was lost or processed twice.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import aiosqlite

from tether.core.envelope import Event
from tether.outbox import Inbox, add_event
from tether.outbox.relay import Relay
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.sinks.memory import MemorySink
from tether.store.sqlite.ddl import migrate


# The business transaction: the order row and its event commit together, or neither does.
async def place_order(db: aiosqlite.Connection, order_id: str, total: float) -> None:
    await db.execute("INSERT INTO orders (id, total) VALUES (?, ?)", (order_id, total))
    await add_event(
        db,
        "OrderPlaced",
        {"order_id": order_id, "total": total},
        aggregate_type="order",
        aggregate_id=order_id,
    )
    await db.commit()


# The consumer: the inbox row and the consumer's own write commit together, so a redelivered
# event is recognised and skipped.
async def consume(db: aiosqlite.Connection, event: Event, processed: list[str]) -> None:
    if await Inbox("invoicing").first_time(db, event.id):
        processed.append(event.payload["order_id"])
    await db.commit()


async def main(path: str) -> int:
    db = await aiosqlite.connect(path)
    await migrate(db)
    await db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total REAL)")
    for n in range(5):
        await place_order(db, f"o-{n}", 10.0 * n)

    # The relay moves committed events to the sinks; here an in-memory sink.
    store = await SqliteOutboxStore.connect(path)
    sink = MemorySink()
    relay = Relay(store, [sink])
    while (await relay.run_once()).claimed:
        pass
    await store.close()

    processed: list[str] = []
    for event in sink.events + sink.events:  # every event delivered twice
        await consume(db, event, processed)
    await db.close()
    print("processed once each:", processed)
    return 0 if processed == [f"o-{n}" for n in range(5)] else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(str(Path(tmp) / "shop.db"))))
