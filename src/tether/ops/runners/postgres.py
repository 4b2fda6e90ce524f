"""The runner registry in PostgreSQL (``tether_runners`` and ``tether_runner_beats``, migration
0015), shared by every process of a deployment, over an asyncpg pool."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.ops.runners.errors import UnknownRunner
from tether.ops.runners.history import steps
from tether.ops.runners.model import (
    KEEP_HISTORY,
    KEEP_RUNNERS,
    HistoryPoint,
    RunnerInfo,
    bucket_start,
    checked_bucket,
    checked_runner,
    checked_stats,
    this_host,
)
from tether.store.sqlfile import queries

log = logging.getLogger("tether.ops.runners")

if TYPE_CHECKING:
    import asyncpg


_PRUNE_BATCH = 5000  # history rows deleted per statement


class PostgresRunnerRegistry:
    def __init__(self, pool: asyncpg.Pool, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._pool = pool
        self._clock = clock
        self._sql = queries("tether.ops", "postgres")

    def _args(self, statement: str, /, **values: Any) -> tuple[Any, ...]:
        """The statement and its arguments, to splat into an asyncpg call."""
        return self._sql[statement].bound(values)

    async def register(
        self, kind: str, name: str, interval_s: float, stats: Mapping[str, float]
    ) -> uuid.UUID:
        checked_runner(kind, name, interval_s)
        checked = checked_stats(stats)
        values = json.dumps(checked)
        try:
            await self.prune()
        except Exception as error:
            # A role granted no DELETE, say: the registration matters more than the pruning
            # (an outage fails the insert below anyway).
            log.warning("runner registry: pruning failed: %s", error)
        runner_id = uuid.uuid4()
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                *self._args(
                    "runner_register",
                    id=runner_id,
                    kind=kind,
                    name=name,
                    host=this_host(),
                    pid=os.getpid(),
                    now=now,
                    interval_s=float(interval_s),
                    stats=values,
                )
            )
            await conn.execute(*self._args("runner_point", id=runner_id, now=now, stats=values))
            await self._add_minute(conn, kind, now, None, checked)
        return runner_id

    async def _add_minute(
        self,
        conn: Any,
        kind: str,
        now: datetime,
        before: Mapping[str, float] | None,
        after: Mapping[str, float],
    ) -> None:
        counters, gauges = steps(before, after)
        keys = sorted(counters.keys() | gauges.keys())
        if not keys:
            return
        await conn.execute(
            *self._args(
                "runner_minute",
                minute=bucket_start(now, 60),
                kind=kind,
                keys=keys,
                increases=[counters.get(k) for k in keys],
                highs=[gauges.get(k) for k in keys],
            )
        )

    async def _update(
        self, statement: str, runner_id: uuid.UUID, stats: Mapping[str, float]
    ) -> None:
        checked = checked_stats(stats)
        values = json.dumps(checked)
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(*self._args(statement, id=runner_id, now=now, stats=values))
            if row is None:
                raise UnknownRunner(runner_id)
            await conn.execute(*self._args("runner_point", id=runner_id, now=now, stats=values))
            before = {k: float(v) for k, v in json.loads(row["before"]).items()}
            await self._add_minute(conn, row["kind"], now, before, checked)

    async def beat(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        await self._update("runner_beat", runner_id, stats)

    async def stop(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        await self._update("runner_stop", runner_id, stats)

    async def runners(self, *, gone_for: timedelta = timedelta(hours=24)) -> list[RunnerInfo]:
        now = self._clock.now()
        rows = await self._pool.fetch(*self._args("runner_list", now=now, cutoff=now - gone_for))
        return [
            RunnerInfo(
                id=row["id"],
                kind=row["kind"],
                name=row["name"],
                host=row["host"],
                pid=row["pid"],
                started_at=row["started_at"],
                heartbeat_at=row["heartbeat_at"],
                interval_s=float(row["interval_s"]),
                stopped_at=row["stopped_at"],
                stats={k: float(v) for k, v in json.loads(row["stats"]).items()},
            )
            for row in rows
        ]

    async def history(self, since: datetime, bucket_s: int) -> list[HistoryPoint]:
        bucket = checked_bucket(bucket_s)
        since = bucket_start(since, bucket)  # whole buckets, the first one included
        # Whole minutes come from the per-minute rows (a few per kind and minute, whatever the
        # number of runners); shorter buckets from every beat.
        statement = "runner_history_minutes" if bucket % 60 == 0 else "runner_history"
        async with self._pool.acquire() as conn, conn.transaction():
            # The planner prices the jsonb expansion high enough to JIT-compile it, which costs
            # more than it saves here (about 200 ms on a day of twenty runners' beats).
            await conn.execute("SET LOCAL jit = off")
            rows = await conn.fetch(*self._args(statement, since=since, bucket_s=bucket))
        points: dict[tuple[datetime, str], HistoryPoint] = {}
        for row in rows:
            key = (row["at"], row["kind"])
            point = points.get(key)
            if point is None:
                point = points[key] = HistoryPoint(row["at"], row["kind"], {}, {})
            (point.rates if row["counter"] else point.gauges)[row["key"]] = float(row["value"])
        return list(points.values())

    async def rebuild_minutes(self, since: datetime) -> int:
        """Recompute the per-minute rows from ``since`` (taken back to its minute) out of the
        beats, for beats written other than through :meth:`beat` (loaded for a benchmark,
        restored from a backup); returns how many rows it wrote."""
        since = bucket_start(since, 60)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL jit = off")
            await conn.execute("DELETE FROM tether_runner_minutes WHERE minute >= $1", since)
            status = await conn.execute(*self._args("runner_rebuild_minutes", since=since))
        return int(status.split()[-1])

    async def prune(self, older_than: timedelta = KEEP_HISTORY) -> int:
        now = self._clock.now()
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                *self._args("runner_prune_runners", cutoff=now - KEEP_RUNNERS)
            )
            removed = int(status.split()[-1])
            for statement in ("runner_prune_beats", "runner_prune_minutes"):
                while True:
                    status = await conn.execute(
                        *self._args(statement, cutoff=now - older_than, batch=_PRUNE_BATCH)
                    )
                    count = int(status.split()[-1])
                    # The per-minute rows are derived from the points: not counted.
                    removed += count if statement == "runner_prune_beats" else 0
                    if count < _PRUNE_BATCH:
                        break
            return removed
