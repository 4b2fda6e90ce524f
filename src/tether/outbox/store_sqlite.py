"""SQLite adapter of the relay's storage port, for the embedded default and single-process use.

Producers may write from other connections (or processes) at the same time: WAL mode and a
busy timeout make them wait for the relay's short write lock instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from tether.core import jsonutil
from tether.outbox.ports import (
    ClaimedEvent,
    OutboxBatch,
    Retry,
    Wakeup,
    claimed_from_row,
    merge_runs,
)
from tether.store.drivers import sqlite_time
from tether.store.sqlfile import load
from tether.store.sqlite.ddl import PRAGMAS, migrate

_Q = load("tether.outbox", "relay_sqlite.sql")


def _row_to_claimed(row: Any) -> ClaimedEvent:
    return claimed_from_row(
        row,
        id=uuid.UUID(row[1]),
        created_at=datetime.fromisoformat(row[11]),
        done_sinks=jsonutil.loads(row[19]),
    )


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

    @classmethod
    async def connect(cls, path: str, *, keep_published: bool = False) -> SqliteOutboxStore:
        conn = await aiosqlite.connect(path, isolation_level=None)
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
                cursor = await self._conn.execute(
                    _Q["claim"].sql, {"now": sqlite_time(now), "limit": limit}
                )
                rows = list(await cursor.fetchall())
                await cursor.close()
                if run > 1 and len(rows) < limit:
                    rows = merge_runs(rows, await self._followers(rows, run - 1, now), limit)
                yield _Batch(self._conn, [_row_to_claimed(r) for r in rows], self._keep, now)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _followers(self, heads: list[Any], per_key: int, now: datetime) -> list[Any]:
        found: list[Any] = []
        for head in heads:
            if head[9] is None:
                continue
            values = {"key": head[9], "head": head[0], "per_key": per_key, "now": sqlite_time(now)}
            cursor = await self._conn.execute(_Q["followers"].sql, values)
            found.extend(await cursor.fetchall())
            await cursor.close()
        return sorted(found, key=lambda r: r[0])

    def notify(self) -> None:
        """Wake a waiting relay at once (for producers in the same process)."""
        self._wakeup.set()

    async def wait(self, timeout: float) -> bool:
        return await self._wakeup.wait(timeout)

    async def close(self) -> None:
        await self._conn.close()
