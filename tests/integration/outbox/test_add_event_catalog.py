"""add_event with an event catalog, on PostgreSQL and SQLite: valid payloads are written in the
model's JSON form with the catalog's version and topic; refused ones write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiosqlite
import asyncpg
import orjson
import pytest
from pydantic import BaseModel

from tether.catalog import EventCatalog
from tether.core.errors import EventValidationError
from tether.outbox import ProducerPolicy, add_event, configure
from tether.store.sqlite.ddl import migrate_sync


class Placed(BaseModel):
    order_id: str
    total_cents: int
    note: str | None = None


def make_catalog() -> EventCatalog:
    catalog = EventCatalog(unknown="refuse")
    catalog.register(model=Placed, type="OrderPlaced", version=2, topic="order")
    return catalog


@pytest.fixture
def catalogued() -> Iterator[None]:
    previous = configure(ProducerPolicy(catalog=make_catalog()))
    yield
    configure(previous)


async def write_and_refuse(conn: object) -> None:
    """One valid event, then three refusals (bad field, unknown type, wrong topic)."""
    ref = await add_event(conn, "OrderPlaced", {"order_id": "o1", "total_cents": "250"})
    assert ref.event.version == 2 and ref.event.topic == "order"
    with pytest.raises(EventValidationError, match="total_cents: Input should be a valid integer"):
        await add_event(conn, "OrderPlaced", {"order_id": "o2", "total_cents": "x"})
    with pytest.raises(EventValidationError, match="did you mean OrderPlaced"):
        await add_event(conn, "OrderPlace", {"order_id": "o3"})
    with pytest.raises(EventValidationError, match="registered on topic 'order', not 'billing'"):
        await add_event(conn, "OrderPlaced", {"order_id": "o4", "total_cents": 1}, topic="billing")
    with pytest.raises(EventValidationError, match="no version 1 in the catalog"):
        await add_event(conn, "OrderPlaced", {"order_id": "o5", "total_cents": 1}, version=1)


EXPECTED = {"order_id": "o1", "total_cents": 250, "note": None}


async def test_postgres(pg_dsn: str, catalogued: None) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with conn.transaction():
            await write_and_refuse(conn)
        rows = await conn.fetch("SELECT type, version, topic, payload FROM tether_outbox")
    finally:
        await conn.close()
    assert len(rows) == 1
    row = rows[0]
    assert (row["type"], row["version"], row["topic"]) == ("OrderPlaced", 2, "order")
    assert orjson.loads(row["payload"]) == EXPECTED


async def test_sqlite(tmp_path: Path, catalogued: None) -> None:
    import sqlite3

    path = tmp_path / "c.db"
    with sqlite3.connect(path) as setup:
        migrate_sync(setup)
    async with aiosqlite.connect(path) as conn:
        await conn.execute("BEGIN")
        await write_and_refuse(conn)
        await conn.commit()
        async with conn.execute("SELECT type, version, topic, payload FROM tether_outbox") as cur:
            rows = list(await cur.fetchall())
    assert len(rows) == 1
    kind, version, topic, payload = rows[0]
    assert (kind, version, topic) == ("OrderPlaced", 2, "order")
    assert orjson.loads(payload) == EXPECTED


async def test_a_refused_payload_alone_writes_nothing(tmp_path: Path, catalogued: None) -> None:
    import sqlite3

    path = tmp_path / "r.db"
    with sqlite3.connect(path) as setup:
        migrate_sync(setup)
    async with aiosqlite.connect(path) as conn:
        await conn.execute("BEGIN")
        with pytest.raises(EventValidationError):
            await add_event(conn, "OrderPlaced", {"order_id": 1})
        await conn.commit()
        async with conn.execute("SELECT count(*) FROM tether_outbox") as cur:
            assert (await cur.fetchone()) == (0,)


async def test_without_a_catalog_any_payload_goes(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "n.db"
    with sqlite3.connect(path) as setup:
        migrate_sync(setup)
    async with aiosqlite.connect(path) as conn:
        await conn.execute("BEGIN")
        ref = await add_event(conn, "OrderPlaced", {"anything": True})
        await conn.commit()
    assert ref.event.version == 1 and ref.event.topic == "OrderPlaced"
