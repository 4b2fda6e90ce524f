"""The inbox contract on every database: once per consumer and id, rollback forgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from tether.core.ids import new_id
from tether.outbox.inbox import Inbox
from tether.store.sqlite.ddl import migrate


class Tx:
    """Open and close a transaction the way each driver does it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def __aenter__(self) -> Any:
        if isinstance(self.conn, asyncpg.Connection):
            self._tx = self.conn.transaction()
            await self._tx.start()
        return self.conn

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        if isinstance(self.conn, asyncpg.Connection):
            await (self._tx.rollback() if exc_type else self._tx.commit())
        else:
            await (self.conn.rollback() if exc_type else self.conn.commit())


@pytest.fixture(params=["postgres", "sqlite"])
async def conn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "postgres":
        c: Any = await asyncpg.connect(request.getfixturevalue("pg_dsn"))
    else:
        c = await aiosqlite.connect(str(tmp_path / "inbox.db"))
        await migrate(c)
    yield c
    await c.close()


async def test_each_id_once_per_consumer(conn: Any) -> None:
    eid = new_id()
    billing, audit = Inbox("billing"), Inbox("audit")
    async with Tx(conn):
        assert await billing.first_time(conn, eid)
    async with Tx(conn):
        assert not await billing.first_time(conn, eid)
        assert await audit.first_time(conn, str(eid))


async def test_rollback_forgets_the_id(conn: Any) -> None:
    eid, inbox = new_id(), Inbox("billing")
    with pytest.raises(RuntimeError):
        async with Tx(conn):
            assert await inbox.first_time(conn, eid)
            raise RuntimeError("consumer failed")
    async with Tx(conn):
        assert await inbox.first_time(conn, eid)


async def test_handle_skips_repeats(conn: Any) -> None:
    eid, inbox, runs = new_id(), Inbox("billing"), []

    async def work() -> str:
        runs.append(1)
        return "done"

    async with Tx(conn):
        assert await inbox.handle(conn, eid, work) == "done"
    async with Tx(conn):
        assert await inbox.handle(conn, eid, work) is None
    assert runs == [1]


async def test_handle_event_upcasts_with_a_catalog_and_skips_repeats(conn: Any) -> None:
    from pydantic import BaseModel

    from tether.catalog import EventCatalog
    from tether.core.envelope import Event, make_event
    from tether.core.errors import EventValidationError

    class PlacedV1(BaseModel):
        total: int

    class PlacedV2(BaseModel):
        total_cents: int

    catalog = EventCatalog()
    catalog.register(model=PlacedV1, type="OrderPlaced", version=1, topic="order")
    catalog.register(model=PlacedV2, type="OrderPlaced", version=2, topic="order")
    catalog.add_upcaster("OrderPlaced", 1, lambda p: {"total_cents": p["total"] * 100})
    inbox, seen = Inbox("billing", catalog=catalog), []

    async def handler(event: Event) -> str:
        seen.append((event.version, event.payload))
        return "done"

    old = make_event("OrderPlaced", {"total": 12}, topic="order", version=1)
    async with Tx(conn):
        assert await inbox.handle_event(conn, old, handler) == "done"
    async with Tx(conn):
        assert await inbox.handle_event(conn, old, handler) is None  # a repeat
    assert seen == [(2, {"total_cents": 1200})]

    broken = make_event("OrderPlaced", {"sum": 1}, topic="order", version=1)
    with pytest.raises(EventValidationError, match="upcaster OrderPlaced v1->v2 failed"):
        async with Tx(conn):
            await inbox.handle_event(conn, broken, handler)
    async with Tx(conn):  # refused before any inbox row: once fixed, it is processed
        assert await Inbox("billing").first_time(conn, broken.id)
