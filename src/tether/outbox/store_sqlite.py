"""SQLite adapter of the relay's storage port, for the embedded default and single-process use.

Producers may write from other connections (or processes) at the same time: WAL mode and a
busy timeout make them wait for the relay's short write lock instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from tether.core import jsonutil
from tether.outbox.claiming import Head, Row, Window, claim_rows
from tether.outbox.ports import (
    ClaimedEvent,
    OutboxBatch,
    Retry,
    Wakeup,
    claimed_from_row,
)
from tether.store.drivers import sqlite_time
from tether.store.sqlfile import queries
from tether.store.sqlite.ddl import PRAGMAS, migrate

_Q = queries("tether.outbox", "sqlite")


def _row_to_claimed(row: Any) -> ClaimedEvent:
    return claimed_from_row(
        row,
        id=uuid.UUID(row["id"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        done_sinks=jsonutil.loads(row["done_sinks"]),
    )


@dataclass(slots=True)
class _Source:
    """The claim primitives of :mod:`tether.outbox.claiming` on the relay's connection."""

    conn: aiosqlite.Connection
    now: str

    async def _fetch(self, name: str, values: Mapping[str, object]) -> list[sqlite3.Row]:
        cursor = await self.conn.execute(_Q[name].sql, {"now": self.now, **values})
        try:
            return list(await cursor.fetchall())
        finally:
            await cursor.close()

    async def heads(self, limit: int, window: int) -> Window:
        rows: list[Row] = list(await self._fetch("heads", {"limit": limit, "window": window}))
        if len(rows) >= limit:
            return Window(rows, None)
        end = await self._fetch("window_end", {"window": window})
        return Window(rows, end[0][0] if end else None)

    async def key_heads(self, cursor: str, limit: int, exclude: Sequence[str]) -> list[Head]:
        skip, found = set(exclude), list[Head]()
        after, upto, wrapped = cursor, None, False
        while len(found) < limit:
            rows = await self._fetch("next_key", {"after": after, "upto": upto})
            if not rows:
                if wrapped or not cursor:
                    break
                after, upto, wrapped = "", cursor, True  # wrap around once
                continue
            key, seq, due = rows[0]
            if due and key not in skip:
                found.append(Head(seq, key))
            after = key
        return found

    async def lock_heads(self, seqs: Sequence[int]) -> list[Row]:
        values = {"seqs": jsonutil.dumps(list(seqs)).decode()}
        return list(await self._fetch("lock_heads", values))

    async def lock_runs(self, heads: Sequence[Head], per_key: int) -> list[Row]:
        rows: list[Row] = []
        for head in heads:
            values = {"key": head.key, "head": head.seq, "per_key": per_key}
            rows += await self._fetch("run", values)
        return rows

    async def unkeyed(self, after_seq: int, limit: int) -> list[Row]:
        return list(await self._fetch("unkeyed", {"after": after_seq, "limit": limit}))


@dataclass(slots=True)
class _Batch:
    conn: aiosqlite.Connection
    events: Sequence[ClaimedEvent]
    keep_published: bool
    now: datetime

    async def settle(self, published: Sequence[int], retries: Sequence[Retry]) -> None:
        now = sqlite_time(self.now)
        if published:
            query = _Q["mark_published" if self.keep_published else "delete_published"].sql
            await self.conn.executemany(query, [{"seq": s, "now": now} for s in published])
        if retries:
            await self.conn.executemany(
                _Q["record_retry"].sql, [self._retry_values(r, now) for r in retries]
            )

    def _retry_values(self, r: Retry, now: str) -> dict[str, object]:
        move = r.transition
        return {
            "seq": r.seq,
            "state": move.state.value,
            "attempts": move.attempts,
            "available_at": sqlite_time(self.now + move.delay),
            "now": now,
            "error": move.error,
            "entry": move.entry_json(),
            "done": jsonutil.dumps(sorted(r.done_sinks)).decode(),
        }


class SqliteOutboxStore:
    """One connection; each batch is a ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: aiosqlite.Connection, *, keep_published: bool = False) -> None:
        self._conn = conn
        self._keep = keep_published
        self._lock = asyncio.Lock()
        self._wakeup = Wakeup()
        self._cursor = ""  # the key after which the next skip scan starts (rotates fairly)
        self._narrow = False  # the last claim found few keys: start with the skip scan

    @classmethod
    async def connect(cls, path: str, *, keep_published: bool = False) -> SqliteOutboxStore:
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row  # claimed rows are read by column name
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        await migrate(conn)
        return cls(conn, keep_published=keep_published)

    @contextlib.asynccontextmanager
    async def claim(self, limit: int, *, run: int = 1) -> AsyncIterator[OutboxBatch]:
        async with self._lock:
            now = datetime.now(UTC)
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                source = _Source(self._conn, sqlite_time(now))
                picked = await claim_rows(source, limit, run, self._cursor, self._narrow)
                self._cursor, self._narrow = picked.cursor, picked.narrow
                events = [_row_to_claimed(r) for r in picked.rows]
                yield _Batch(self._conn, events, self._keep, now)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    def notify(self) -> None:
        """Wake a waiting relay at once (for producers in the same process)."""
        self._wakeup.set()

    async def wait(self, timeout: float) -> bool:
        return await self._wakeup.wait(timeout)

    async def close(self) -> None:
        await self._conn.close()
