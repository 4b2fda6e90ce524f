"""The work-item engine on SQLite through aiosqlite, for one process.

One connection in autocommit mode; an asyncio lock serializes this process's transactions on
it, and ``BEGIN IMMEDIATE`` takes SQLite's write lock before a claim reads, so two claimers
(even in two processes on one file) never pick the same item.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, cast

import aiosqlite

from tether.core import jsonutil
from tether.core.backoff import RetryPolicy
from tether.core.clock import Clock
from tether.core.errors import ConfigError, StoreError
from tether.core.ids import new_id
from tether.queue import codec
from tether.queue.engine import Engine
from tether.queue.ports import Claimed, Item, NewItem
from tether.queue.spec import ITEMS, TableSpec, render
from tether.store import drivers
from tether.store.drivers import NotInTransactionError
from tether.store.sqlite import ddl


def to_sqlite(value: object) -> object:
    """Python value → what the SQLite schema stores (see store/sqlite/schema)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _params(values: Mapping[str, Any]) -> dict[str, object]:
    return {k: to_sqlite(v) for k, v in values.items()}


def _uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


@asynccontextmanager
async def _wrapped(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (sqlite3.Error, ValueError) as exc:
        # aiosqlite raises ValueError when the connection was closed.
        raise StoreError(f"SQLite failed during {what}: {exc}") from exc


async def open_database(path: str | Path) -> aiosqlite.Connection:
    """Open (and migrate) a database file with the settings the engine relies on."""
    async with _wrapped("connect"):
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in ddl.PRAGMAS:
            await conn.execute(pragma)
        await ddl.migrate(conn)
        return conn


class SqliteQueue(Engine):
    """One queue of ``tether_items`` (or the outbox's admin operations with
    ``spec=tether.outbox.table.OUTBOX``)."""

    dialect = "sqlite"

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        spec: TableSpec = ITEMS,
        queue: str | None = "default",
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        keep_done: bool = False,
        key_ordering: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            spec=spec,
            queue=queue if spec.has_queue_column else None,
            policy=policy,
            clock=clock,
            keep_done=keep_done,
            key_ordering=key_ordering,
            rng=rng,
        )
        self.conn = conn
        self._lock = asyncio.Lock()
        self._owns_conn = False

    @classmethod
    async def connect(cls, path: str | Path, **options: Any) -> SqliteQueue:
        """Open a connection of its own (closed by :meth:`close`)."""
        queue = cls(await open_database(path), **options)
        queue._owns_conn = True
        return queue

    async def close(self) -> None:
        """Close the connection if this queue opened it; one passed in belongs to the caller."""
        if self._owns_conn:
            await self.conn.close()

    def _item(self, row: Mapping[str, Any]) -> Item:
        return codec.item_from_row(row, self.spec, to_dt=codec.iso_to_dt, to_uuid=_uuid)

    async def _rows(
        self, name: str, params: dict[str, Any], parts: Mapping[str, str] | None = None
    ) -> list[Mapping[str, Any]]:
        query = render("sqlite", name, self.spec, **(parts or {}))
        async with self._lock, _wrapped(name):
            rows = await self.conn.execute_fetchall(query.sql, _params(params))
            return cast(list[Mapping[str, Any]], list(rows))

    async def _count(
        self, name: str, params: dict[str, Any], parts: Mapping[str, str] | None = None
    ) -> int:
        query = render("sqlite", name, self.spec, **(parts or {}))
        async with self._lock, _wrapped(name):
            cursor = await self.conn.execute(query.sql, _params(params))
            count = cursor.rowcount
            await cursor.close()
            return count

    @asynccontextmanager
    async def _write(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction on the engine's connection, holding the write lock from BEGIN."""
        async with self._lock, _wrapped(what):
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.rollback()
                raise
            await self.conn.commit()

    async def enqueue(self, items: Sequence[NewItem], *, tx: object = None) -> list[uuid.UUID]:
        """``tx``: an aiosqlite connection, or a SQLAlchemy ``AsyncSession``/``AsyncConnection``
        on SQLite, with a transaction open. The rows are written there and never committed."""
        if not self.spec.has_queue_column:
            raise ConfigError(f"enqueue writes work items; {self.spec.name} is filled elsewhere")
        self._require_queue("enqueue")
        now = self.clock.now()
        ids = [i.id or new_id() for i in items]
        rows: list[dict[str, object]] = [
            {
                "id": item_id,
                "queue": self.queue,
                "partition_key": i.partition_key,
                "max_attempts": i.max_attempts,
                "available_at": i.run_at or now,
                "now": now,
                "payload": codec.encode_payload(i.payload),
            }
            for item_id, i in zip(ids, items, strict=True)
        ]
        if not rows:
            return []
        query = render("sqlite", "enqueue", self.spec)
        if tx is None:
            async with self._write("enqueue") as conn:
                await conn.executemany(query.sql, [_params(r) for r in rows])
        elif isinstance(tx, aiosqlite.Connection):
            # In autocommit mode with no BEGIN each insert would commit on its own.
            if tx.isolation_level is None and not tx.in_transaction:
                raise NotInTransactionError(
                    "enqueue(tx=conn): the aiosqlite connection has no open transaction, so "
                    "the items would commit on their own; execute BEGIN first"
                )
            async with _wrapped("enqueue"):
                await tx.executemany(query.sql, [_params(r) for r in rows])
        else:
            for row in rows:
                await drivers.execute(tx, query, row)
        return ids

    async def _archive(self, archive: str, clause: str, params: dict[str, Any]) -> int:
        parts = {"where": clause, "archive": archive}
        pick = render("sqlite", "sweep_pick", self.spec, **parts)
        copy = render("sqlite", "archive_copy", self.spec, **parts)
        delete = render("sqlite", "archive_delete", self.spec, **parts)
        values = _params(params)
        async with self._write("sweep") as conn:
            rows = await conn.execute_fetchall(pick.sql, {k: values[k] for k in pick.params})
            picked = [row["seq"] for row in rows]
            seqs = jsonutil.dumps(picked).decode()
            await conn.execute(copy.sql, {"seqs": seqs})
            await conn.execute(delete.sql, {"seqs": seqs})
        return len(picked)

    async def claim(self, limit: int, *, lease: timedelta, worker: str) -> list[Claimed]:
        params = self._claim_params(limit, lease, worker)
        order = render("sqlite", "key_order", self.spec).sql if self.key_ordering else ""
        bury = render("sqlite", "bury_expired", self.spec)
        claim = render("sqlite", "claim", self.spec, key_order=order)
        values = _params(params)
        async with self._write("claim") as conn:
            await conn.execute(bury.sql, {k: values[k] for k in bury.params})
            rows = await conn.execute_fetchall(claim.sql, {k: values[k] for k in claim.params})
        return self._claimed(cast(list[Mapping[str, Any]], list(rows)), params)
