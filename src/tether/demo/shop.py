"""The demo's business side: a shop whose orders and events commit together."""

from __future__ import annotations

import random
import uuid

import aiosqlite

from tether.outbox import add_event
from tether.store.sqlfile import queries

SQL = queries("tether.demo", "sqlite")
SCHEMA = SQL["schema"].sql

CUSTOMERS = ("ada", "grace", "linus", "margaret", "ken", "barbara", "edsger", "frances")
ITEMS = ("espresso beans", "grinder", "kettle", "filter papers", "mug", "scale")


class Shop:
    """Places and pays orders. Each call is one transaction: business row + event, or neither."""

    def __init__(self, conn: aiosqlite.Connection, rng: random.Random) -> None:
        self._conn = conn
        self._rng = rng
        self._unpaid: list[str] = []

    async def place_order(self) -> uuid.UUID:
        order_id = uuid.uuid4().hex[:12]
        customer, item = self._rng.choice(CUSTOMERS), self._rng.choice(ITEMS)
        quantity = self._rng.randint(1, 3)
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = {"id": order_id, "customer": customer, "item": item, "quantity": quantity}
            await self._conn.execute(SQL["place_order"].sql, row)
            ref = await add_event(
                self._conn,
                "OrderPlaced",
                {"order_id": order_id, "customer": customer, "item": item, "quantity": quantity},
                aggregate_type="order",
                aggregate_id=order_id,
            )
        except BaseException:
            await self._conn.execute("ROLLBACK")
            raise
        await self._conn.execute("COMMIT")
        self._unpaid.append(order_id)
        return ref.id

    async def pay_order(self) -> uuid.UUID | None:
        """Pay the oldest unpaid order: a second event of the same aggregate, kept in order."""
        if not self._unpaid:
            return None
        order_id = self._unpaid.pop(0)
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            await self._conn.execute(SQL["pay_order"].sql, {"id": order_id})
            ref = await add_event(
                self._conn,
                "OrderPaid",
                {"order_id": order_id},
                aggregate_type="order",
                aggregate_id=order_id,
            )
        except BaseException:
            await self._conn.execute("ROLLBACK")
            raise
        await self._conn.execute("COMMIT")
        return ref.id
