"""Quickstart: a FastAPI + SQLAlchemy endpoint that writes an order and its event together, a
relay that publishes the event, and a consumer that handles it once through the inbox.

Run: ``.venv/bin/python examples/quickstart_outbox.py`` (SQLite, no services needed).
The docs in ``docs/tutorial.md`` quote this file; ``tests/integration/test_examples.py`` runs it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tether.core.envelope import Event
from tether.outbox import add_event
from tether.outbox.inbox import Inbox
from tether.outbox.relay import Relay
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.sinks.memory import MemorySink


# --- the producer: business row and event in one transaction ---------------------------------
class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    item: Mapped[str]
    quantity: Mapped[int]


class PlaceOrder(BaseModel):
    id: str
    item: str
    quantity: int


def create_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    app = FastAPI()

    @app.post("/orders", status_code=201)
    async def place_order(body: PlaceOrder) -> dict[str, str]:
        async with sessions() as session, session.begin():
            session.add(Order(id=body.id, item=body.item, quantity=body.quantity))
            ref = await add_event(
                session,
                "OrderPlaced",
                body.model_dump(),
                aggregate_type="order",
                aggregate_id=body.id,
            )
        # Committed: the order exists and so does its event. Neither exists if anything failed.
        return {"order": body.id, "event": str(ref.id)}

    return app


# --- the relay: claim, publish, settle --------------------------------------------------------
async def relay_pending(store: SqliteOutboxStore, sink: MemorySink) -> int:
    relay = Relay(store, [sink])
    report = await relay.run_once()  # in production: `tether relay` runs this in a loop
    return report.published


# --- the consumer: each event id once, in the consumer's own transaction ----------------------
class Shipment(Base):
    __tablename__ = "shipments"
    order_id: Mapped[str] = mapped_column(String, primary_key=True)


async def handle(sessions: async_sessionmaker[AsyncSession], event: Event) -> bool:
    async with sessions() as session, session.begin():
        if not await Inbox("shipping").first_time(session, event.id):
            return False  # a redelivery: already handled, skip it
        session.add(Shipment(order_id=event.payload["id"]))
        return True


# --- wiring it together -----------------------------------------------------------------------
async def main(folder: Path) -> int:
    path = folder / "shop.db"
    store = await SqliteOutboxStore.connect(str(path))  # also creates Tether's tables
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    transport = httpx.ASGITransport(app=create_app(sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        for n, item in enumerate(["kettle", "grinder", "mug"]):
            response = await client.post(
                "/orders", json={"id": f"o{n}", "item": item, "quantity": 1}
            )
            print("placed", response.json()["order"])

    sink = MemorySink()
    print("relayed", await relay_pending(store, sink))
    handled = [await handle(sessions, event) for event in sink.events]
    again = await handle(sessions, sink.events[0])  # the broker redelivers one event
    print("handled", sum(handled), "redelivery handled again:", again)

    await store.close()
    await engine.dispose()
    return 0 if sum(handled) == 3 and not again else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(Path(tmp))))
