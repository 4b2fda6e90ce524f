"""One harness per relay store adapter, so the same relay contract runs on each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiosqlite
import asyncpg

from tether.core import jsonutil
from tether.outbox import add_event
from tether.outbox.ports import OutboxStore
from tether.outbox.store_pg import PostgresOutboxStore
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.store.sqlite.ddl import PRAGMAS, migrate


class Harness(Protocol):
    async def produce(self, n: int, **fields: Any) -> list[str]: ...
    async def rows(self) -> list[dict[str, Any]]: ...
    async def make_due(self) -> None: ...
    async def postpone(self, event_id: str) -> None: ...
    def store(self, *, keep_published: bool = False) -> Any: ...
    async def close(self) -> None: ...


class PgHarness:
    def __init__(self, dsn: str, conn: asyncpg.Connection) -> None:
        self.dsn, self.conn = dsn, conn

    async def produce(self, n: int, **fields: Any) -> list[str]:
        async with self.conn.transaction():
            return [
                str((await add_event(self.conn, "OrderPlaced", {"n": i}, **fields)).id)
                for i in range(n)
            ]

    async def rows(self) -> list[dict[str, Any]]:
        rows = await self.conn.fetch("SELECT * FROM tether_outbox ORDER BY seq")
        return [
            {**dict(r), "id": str(r["id"]), "errors": jsonutil.loads(r["errors"])} for r in rows
        ]

    async def make_due(self) -> None:
        await self.conn.execute(
            "UPDATE tether_outbox SET available_at = now() WHERE state = 'pending'"
        )

    async def postpone(self, event_id: str) -> None:
        await self.conn.execute(
            "UPDATE tether_outbox SET available_at = now() + interval '1 hour' WHERE id = $1::uuid",
            event_id,
        )

    @asynccontextmanager
    async def store(
        self, *, keep_published: bool = False, connections: int = 2
    ) -> AsyncIterator[OutboxStore]:
        s = await PostgresOutboxStore.connect(
            self.dsn, connections=connections, keep_published=keep_published
        )
        try:
            yield s
        finally:
            await s.close()

    async def close(self) -> None:
        await self.conn.close()


class SqliteHarness:
    def __init__(self, path: str, conn: aiosqlite.Connection) -> None:
        self.path, self.conn = path, conn

    async def produce(self, n: int, **fields: Any) -> list[str]:
        ids = [
            str((await add_event(self.conn, "OrderPlaced", {"n": i}, **fields)).id)
            for i in range(n)
        ]
        await self.conn.commit()
        return ids

    async def rows(self) -> list[dict[str, Any]]:
        self.conn.row_factory = aiosqlite.Row
        cursor = await self.conn.execute("SELECT * FROM tether_outbox ORDER BY seq")
        rows = [dict(r) for r in await cursor.fetchall()]
        self.conn.row_factory = None
        await self.conn.commit()
        for r in rows:
            r["errors"] = jsonutil.loads(r["errors"])
            r["done_sinks"] = jsonutil.loads(r["done_sinks"])
        return rows

    async def make_due(self) -> None:
        await self.conn.execute(
            "UPDATE tether_outbox SET available_at = '1970-01-01T00:00:00.000000+00:00' WHERE state = 'pending'"
        )
        await self.conn.commit()

    async def postpone(self, event_id: str) -> None:
        await self.conn.execute(
            "UPDATE tether_outbox SET available_at = '9999-01-01T00:00:00.000000+00:00' WHERE id = ?",
            (event_id,),
        )
        await self.conn.commit()

    @asynccontextmanager
    async def store(
        self, *, keep_published: bool = False, connections: int = 1
    ) -> AsyncIterator[OutboxStore]:
        s = await SqliteOutboxStore.connect(self.path, keep_published=keep_published)
        try:
            yield s
        finally:
            await s.close()

    async def close(self) -> None:
        await self.conn.close()


async def open_sqlite(path: str) -> SqliteHarness:
    conn = await aiosqlite.connect(path)
    for pragma in PRAGMAS:
        await conn.execute(pragma)
    await migrate(conn)
    return SqliteHarness(path, conn)


def new_tag() -> str:
    return uuid.uuid4().hex[:8]
