"""The demo's consumer: ships each order once, however often its event is delivered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import aiosqlite

from tether.core.envelope import Event
from tether.demo.shop import SQL
from tether.outbox.inbox import Inbox
from tether.sinks.memory import MemorySink


class Shipping:
    """Reads the broker in order; each event is handled in one transaction with its inbox row,
    so a repeat (redelivery after a lost ack) is recognized and skipped."""

    def __init__(self, conn: aiosqlite.Connection, source: MemorySink) -> None:
        self._conn = conn
        self._source = source
        self._inbox = Inbox("shipping")
        self.received: set[uuid.UUID] = set()
        self.duplicates = 0
        self.out_of_order = 0
        self._placed: set[str] = set()
        self._read = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._source.wait_for(self._read + 1, timeout=0.2)
            except TimeoutError:
                continue
            await self.catch_up()

    async def catch_up(self) -> None:
        """Handle everything delivered so far, up to 100 events per transaction."""
        events = self._source.events[self._read :]
        for i in range(0, len(events), 100):
            await self._handle_batch(events[i : i + 100])
        self._read += len(events)

    async def _handle_batch(self, events: Sequence[Event]) -> None:
        # One transaction for the batch: each inbox row commits with the shipment it caused,
        # or (on failure) neither does and the whole batch is handled again.
        firsts = []
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                first = await self._inbox.first_time(self._conn, event.id)
                firsts.append(first)
                if first and event.type == "OrderPaid":
                    ship = {"order_id": str(event.payload["order_id"]), "event_id": str(event.id)}
                    await self._conn.execute(SQL["ship_order"].sql, ship)
        except BaseException:
            await self._conn.execute("ROLLBACK")
            raise
        await self._conn.execute("COMMIT")
        for event, first in zip(events, firsts, strict=True):
            if first:
                self.received.add(event.id)
                self._check_order(event.type, str(event.payload["order_id"]))
            else:
                self.duplicates += 1

    def _check_order(self, type: str, order_id: str) -> None:
        # Events of one order share a partition key: OrderPaid must never overtake OrderPlaced.
        if type == "OrderPlaced":
            self._placed.add(order_id)
        elif order_id not in self._placed:
            self.out_of_order += 1
