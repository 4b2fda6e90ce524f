"""PostgreSQL adapter of the relay's storage port (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from tether.core.errors import ConfigError
from tether.outbox.claiming import Head, Row, Window, claim_rows
from tether.outbox.ports import ClaimedEvent, OutboxBatch, Retry, Wakeup, claimed_from_row
from tether.store.postgres import pooler
from tether.store.sqlfile import queries

CHANNEL = "tether_outbox"
_Q = queries("tether.outbox", "postgres")
_HEADS = _Q["heads"].numbered
_WINDOW_END = _Q["window_end"].numbered
_KEY_HEADS = _Q["key_heads"].numbered
_LOCK_HEADS = _Q["lock_heads"].numbered
_LOCK_RUNS = _Q["lock_runs"].numbered
_UNKEYED = _Q["unkeyed"].numbered
_DELETE = _Q["delete_published"].numbered
_MARK = _Q["mark_published"].numbered
_ARCHIVE = _Q["archive_published"].numbered
_RETRIES = _Q["record_retries"].numbered
# With stale statistics (a table analyzed while empty, then loaded) the planner may pick a bitmap
# scan that reads every pending row and sorts them all, where the ordered index scan stops after
# LIMIT rows (55 ms against 0.6 ms per claim at 20k rows, measured). Relay sessions only run the
# claim and settle statements, which all want index scans.
SERVER_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "enable_bitmapscan": "off",
    # Priced as the hot table is (cached): a run is one key's range of the (partition_key, seq)
    # index, which the default cost model passes over for the seq index when keys are few,
    # walking other keys' rows (measured: a 10-key backlog drained 10x slower).
    "random_page_cost": "1.1",
    "application_name": "tether-relay",
}


def row_to_claimed(row: Any) -> ClaimedEvent:
    # asyncpg's UUID is a uuid.UUID subclass that compares, hashes and pickles like one, and its
    # str() is ten times cheaper: copying it into a plain UUID cost ~1.6 us per event.
    return claimed_from_row(
        row, id=row["id"], created_at=row["created_at"], done_sinks=row["done_sinks"]
    )


@dataclass(slots=True)
class _Source:
    """The claim primitives of :mod:`tether.outbox.claiming` on one connection."""

    conn: PoolConnectionProxy[asyncpg.Record]

    async def heads(self, limit: int, window: int) -> Window:
        rows: list[Row] = list(await self.conn.fetch(_HEADS, window, limit))
        if len(rows) >= limit:
            return Window(rows, None)  # full of heads: where the window ends does not matter
        return Window(rows, await self.conn.fetchval(_WINDOW_END, window))

    async def key_heads(self, cursor: str, limit: int, exclude: Sequence[str]) -> list[Head]:
        rows = await self.conn.fetch(_KEY_HEADS, cursor, list(exclude), limit)
        return [Head(r[1], r[0]) for r in rows]

    async def lock_heads(self, seqs: Sequence[int]) -> list[Row]:
        return list(await self.conn.fetch(_LOCK_HEADS, seqs))

    async def lock_runs(self, heads: Sequence[Head], per_key: int) -> list[Row]:
        keys, seqs = [h.key for h in heads], [h.seq for h in heads]
        return list(await self.conn.fetch(_LOCK_RUNS, keys, seqs, per_key))

    async def unkeyed(self, after_seq: int, limit: int) -> list[Row]:
        return list(await self.conn.fetch(_UNKEYED, after_seq, limit))


@dataclass(slots=True)
class _Batch:
    conn: PoolConnectionProxy[asyncpg.Record]
    events: Sequence[ClaimedEvent]
    settle_published: str  # the statement that settles published rows (delete, mark or move)

    @property
    def connection(self) -> PoolConnectionProxy[asyncpg.Record]:
        """The batch's transaction, for sinks that write in it (``publish_in``)."""
        return self.conn

    async def settle(self, published: Sequence[int], retries: Sequence[Retry]) -> None:
        if published:
            await self.conn.execute(self.settle_published, list(published))
        if retries:
            moves = [r.transition for r in retries]
            await self.conn.execute(
                _RETRIES,
                [r.seq for r in retries],
                [m.state.value for m in moves],
                [m.attempts for m in moves],
                [m.delay.total_seconds() for m in moves],
                [m.error for m in moves],
                [m.entry_json() for m in moves],
                [",".join(sorted(r.done_sinks)) for r in retries],
            )


class PostgresOutboxStore:
    """Claims outbox rows on a pool of asyncpg connections; wakes on LISTEN when producers notify.

    ``keep_published`` keeps published rows as ``done`` (for retention sweeps and auditing)
    instead of deleting them at once, at the cost of an index update per row. With ``archive``
    too, they move to the month-partitioned ``tether_outbox_archive`` as they are settled, so
    the hot table stays small however many are kept (:mod:`tether.outbox.partitions`).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        keep_published: bool = False,
        archive: bool = False,
        pooler_mode: pooler.PoolerMode | str | bool | None = None,
        listen_dsn: str | None = None,
    ) -> None:
        if archive and not keep_published:
            raise ConfigError("archive=True moves kept rows: it needs keep_published=True")
        self._pool = pool
        self._settle = _ARCHIVE if archive else _MARK if keep_published else _DELETE
        self._local = pooler.local_settings(pooler_mode, SERVER_SETTINGS)
        self._listen_dsn = pooler.listen_dsn(pooler_mode, dsn, listen_dsn)
        self._wakeup = Wakeup()
        self._listener: asyncpg.Connection | None = None
        self._cursor = ""  # the key after which the next skip scan starts (rotates fairly)
        self._narrow = False  # the last claim found few keys: start with the skip scan

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        connections: int = 1,
        keep_published: bool = False,
        archive: bool = False,
        pooler_mode: pooler.PoolerMode | str | bool | None = None,
        listen_dsn: str | None = None,
    ) -> PostgresOutboxStore:
        """``pooler_mode="transaction"`` when ``dsn`` leads to a transaction-mode pooler
        (PgBouncer, Supabase): no session settings or named statements are relied on, and
        wake-ups LISTEN on ``listen_dsn`` (a direct connection) or fall back to polling."""
        if archive and not keep_published:  # checked before any connection is opened
            raise ConfigError("archive=True moves kept rows: it needs keep_published=True")
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max(1, connections),
            **pooler.connect_kwargs(pooler_mode, SERVER_SETTINGS),
        )
        return cls(
            pool,
            dsn,
            keep_published=keep_published,
            archive=archive,
            pooler_mode=pooler_mode,
            listen_dsn=listen_dsn,
        )

    @contextlib.asynccontextmanager
    async def claim(self, limit: int, *, run: int = 1) -> AsyncIterator[OutboxBatch]:
        async with self._pool.acquire() as conn, conn.transaction():
            await pooler.apply_local(conn, self._local)
            picked = await claim_rows(_Source(conn), limit, run, self._cursor, self._narrow)
            self._cursor, self._narrow = picked.cursor, picked.narrow
            yield _Batch(conn, [row_to_claimed(r) for r in picked.rows], self._settle)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        # A lost listener only costs latency (polling continues), so failures here are quiet.
        if self._listen_dsn is None:
            return  # behind a transaction pooler with no direct DSN: polling only
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            conn = await asyncpg.connect(self._listen_dsn, timeout=2)
            await conn.add_listener(CHANNEL, self._wakeup.set)
            self._listener = conn

    async def wait(self, timeout: float) -> bool:
        await self._ensure_listener()
        return await self._wakeup.wait(timeout)

    async def close(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(Exception):
                await self._listener.close()
        await self._pool.close()
