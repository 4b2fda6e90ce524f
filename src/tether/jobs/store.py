"""The jobs table on PostgreSQL: the statements a job needs beyond the work-item engine.

Claims, heartbeats, completions with a result, stale-job recovery, cancellation and cron
ticks are here (``jobs/sql/postgres.sql``). Retries, deferrals and dead letters are the
engine's own lease-checked transitions on the same table (:mod:`tether.queue.engine`), and so
are the admin operations (list, get, replay, purge, sweep, stats): one lifecycle everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, cast

import asyncpg

from tether.core import jsonutil
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigError, LeaseLostError, StoreError
from tether.core.ids import new_id
from tether.queue import Claimed, Item, ItemFilter, TableSpec
from tether.queue.postgres import PostgresQueue, create_pool
from tether.queue.postgres import _wrapped as wrapped
from tether.store import drivers
from tether.store.drivers import NotInTransactionError
from tether.store.sqlfile import Query, queries
from tether.tenancy import SETTING, check_tenant_id

JOBS = TableSpec(
    "tether_jobs",
    has_queue_column=True,
    extra_columns=(
        "name",
        "priority",
        "timeout_s",
        "dedup_key",
        "heartbeat_at",
        "result",
        "tenant_id",
    ),
)
# What a worker needs to run a claimed job: the claim answers these columns only (its other
# columns cost PostgreSQL and the driver time per job, and a job that succeeds never reads them).
RUN_COLUMNS = (
    "seq", "id", "queue", "attempts", "max_attempts", "payload", "name", "priority",
    "timeout_s", "tenant_id",
)  # fmt: skip
RECOVERED = "Recovered from stale state (no worker heartbeat)"
CANCELLED = "cancelled by an operator"


@dataclass(frozen=True, slots=True)
class NewJob:
    """One row to insert (already validated by :class:`tether.jobs.Jobs`)."""

    name: str
    queue: str
    payload: Any
    priority: int = 0
    run_at: datetime | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None
    dedup_key: str | None = None
    id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class JobRef:
    """What ``enqueue`` answers per job: its id, and ``created=False`` when the
    de-duplication key was already held (``id`` is then the job holding it, or None if that
    job finished in the meantime)."""

    id: uuid.UUID | None
    created: bool


@dataclass(frozen=True, slots=True)
class HeldKey:
    """A dead job a retry left dead: its de-duplication key is held by ``holder``, a queued or
    running job, or by another dead job of the same retry (only one per key may be live)."""

    id: uuid.UUID
    dedup_key: str
    holder: uuid.UUID | None
    by_live_job: bool


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    retried: int
    refused: list[HeldKey]


@dataclass(frozen=True, slots=True)
class Recovered:
    id: uuid.UUID
    queue: str
    name: str
    dead: bool
    worker: str | None


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A job claimed by ``settle_and_claim_rows``, held under ``lease_token`` until
    ``lease_expires_at``: ``row`` has its ``RUN_COLUMNS`` (every column with ``full=True``)."""

    row: Mapping[str, Any]
    lease_token: uuid.UUID
    lease_expires_at: datetime


def _run_order(claim: ClaimedRow) -> tuple[int, int]:
    return -int(claim.row["priority"]), int(claim.row["seq"])


def _q(name: str) -> Query:
    return queries("tether.jobs", "postgres")[name]


@cache
def _render(name: str, full: bool = True) -> Query:
    query = _q(name)
    if "{" not in query.sql:
        return query
    columns = JOBS.columns_of("t") if full else ", ".join(f"t.{c}" for c in RUN_COLUMNS)
    return Query(name, query.sql.replace("{t_columns}", columns))


def _affected(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class JobStore:
    """``tether_jobs`` through an asyncpg pool. ``engine`` is the work-item engine's admin
    view over every queue of the table (list, get, count, replay, purge, sweep, stats)."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Clock | None = None) -> None:
        self.pool = pool
        self.clock = clock or SYSTEM_CLOCK
        self.engine = PostgresQueue(pool, spec=JOBS, queue=None, clock=self.clock)
        self._owns_pool = False

    @classmethod
    async def connect(
        cls, dsn: str, *, max_size: int = 10, tenant: str | None = None, **options: Any
    ) -> JobStore:
        """``tenant``: every connection of the pool is scoped to it (the session setting
        ``tether.tenant_id``), so under row-level security this store enqueues, lists, counts,
        retries, cancels and purges that tenant's jobs only (docs/tenancy.md)."""
        settings = {SETTING: check_tenant_id(tenant)} if tenant is not None else None
        store = cls(await create_pool(dsn, max_size=max_size, settings=settings), **options)
        store._owns_pool = True
        return store

    async def close(self) -> None:
        if self._owns_pool:
            await self.pool.close()

    def item(self, row: Mapping[str, Any]) -> Item:
        return self.engine._item(row)

    # -- enqueue ---------------------------------------------------------------------------
    def _enqueue_values(self, jobs: Sequence[NewJob]) -> tuple[list[uuid.UUID], dict[str, Any]]:
        now = self.clock.now()
        ids = [j.id or new_id() for j in jobs]
        values: dict[str, Any] = {
            "now": now,
            "ids": ids,
            "names": [j.name for j in jobs],
            "queues": [j.queue for j in jobs],
            "priorities": [j.priority for j in jobs],
            "available_at": [j.run_at or now for j in jobs],
            "max_attempts": [j.max_attempts for j in jobs],
            "timeouts": [j.timeout_s for j in jobs],
            "dedup_keys": [j.dedup_key for j in jobs],
            "payloads": [jsonutil.encode_payload(j.payload).decode() for j in jobs],
        }
        return ids, values

    @staticmethod
    def _refs(rows: Sequence[Sequence[Any]]) -> list[JobRef]:
        def as_uuid(v: Any) -> uuid.UUID | None:
            return None if v is None else v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))

        return [JobRef(as_uuid(r[3]), r[2] is not None) for r in rows]

    async def enqueue(self, jobs: Sequence[NewJob], *, tx: object = None) -> list[JobRef]:
        """Insert in one statement. ``tx``: an asyncpg connection, a SQLAlchemy
        ``AsyncSession``/``AsyncConnection`` or a psycopg ``AsyncConnection`` inside an open
        transaction (written there, never committed here); None: on its own."""
        if not jobs:
            return []
        query, values = self._enqueue_query(jobs)
        rows: Sequence[Sequence[Any]]
        if tx is None:
            async with wrapped("enqueue"):
                rows = cast(list[Any], await self.pool.fetch(query.numbered, *query.args(values)))
        elif isinstance(tx, asyncpg.Connection):
            if not tx.is_in_transaction():
                raise NotInTransactionError(
                    "enqueue(tx=conn): the asyncpg connection has no open transaction, so the "
                    "jobs would commit on their own; call it inside "
                    "`async with conn.transaction():`"
                )
            async with wrapped("enqueue"):
                rows = await tx.fetch(query.numbered, *query.args(values))
        else:
            self._require_postgres(tx)
            rows = await drivers.execute(tx, query, values)
        return self._refs(rows)

    def enqueue_sync(self, jobs: Sequence[NewJob], *, tx: object) -> list[JobRef]:
        """The same inside a synchronous transaction: a SQLAlchemy ``Session``/``Connection``
        or a psycopg ``Connection``."""
        if not jobs:
            return []
        self._require_postgres(tx)
        query, values = self._enqueue_query(jobs)
        return self._refs(drivers.execute_sync(tx, query, values))

    def _enqueue_query(self, jobs: Sequence[NewJob]) -> tuple[Query, dict[str, Any]]:
        if len(jobs) > 1:
            return _q("enqueue"), self._enqueue_values(jobs)[1]
        j = jobs[0]
        now = self.clock.now()
        values = {
            "id": j.id or new_id(),
            "name": j.name,
            "queue": j.queue,
            "priority": j.priority,
            "available_at": j.run_at or now,
            "max_attempts": j.max_attempts,
            "timeout_s": j.timeout_s,
            "dedup_key": j.dedup_key,
            "now": now,
            "payload": jsonutil.encode_payload(j.payload).decode(),
        }
        return _q("enqueue_one"), values

    @staticmethod
    def _require_postgres(tx: object) -> None:
        if drivers.dialect_of(tx) != "postgres":
            raise ConfigError("jobs live in PostgreSQL: enqueue(tx=...) needs a PostgreSQL handle")

    # -- running ---------------------------------------------------------------------------
    async def claim(
        self, queue: str, limit: int, *, lease: timedelta, worker: str
    ) -> list[Claimed]:
        now = self.clock.now()
        token = uuid.uuid4()
        until = now + lease
        query = _render("claim")
        values = {
            "queue": queue, "now": now, "limit": limit, "lease_until": until,
            "token": token, "worker": worker,
        }  # fmt: skip
        async with wrapped("claim"):
            rows = await self.pool.fetch(query.numbered, *query.args(values))
        items = sorted(
            (self.item(cast(Mapping[str, Any], r)) for r in rows),
            key=lambda i: (-int(i.extra["priority"]), i.seq),
        )
        return [Claimed(i, token, until) for i in items]

    async def settle_and_claim(
        self,
        finished: Sequence[tuple[Claimed, Any]],
        *,
        queue: str,
        limit: int,
        lease: timedelta,
        worker: str,
        keep: bool = True,
        conn: Any = None,
    ) -> tuple[list[Claimed], list[Claimed]]:
        """Complete ``finished`` and claim up to ``limit`` jobs of ``queue`` in ONE statement
        (on ``conn`` when given, else a pooled connection). Returns (lost, claimed): the
        finished jobs whose lease was lost (their results discarded) and the new claims."""
        results = [r for _, r in finished] if keep else None
        done, claims = await self.settle_and_claim_rows(
            [c.item.seq for c, _ in finished], [c.lease_token for c, _ in finished], results,
            queue=queue, limit=limit, lease=lease, worker=worker, conn=conn, full=True,
        )  # fmt: skip
        lost = [c for c, _ in finished if c.item.seq not in done]
        return lost, [Claimed(self.item(r.row), r.lease_token, r.lease_expires_at) for r in claims]

    async def settle_and_claim_rows(
        self,
        seqs: Sequence[int],
        tokens: Sequence[uuid.UUID],
        results: Sequence[Any] | None,
        *,
        queue: str,
        limit: int,
        lease: timedelta,
        worker: str,
        conn: Any = None,
        full: bool = False,
    ) -> tuple[set[int], list[ClaimedRow]]:
        """``settle_and_claim`` for the worker's hot path: the finished jobs as their seqs and
        lease tokens with their ``results`` (None: delete the rows instead of keeping them),
        answered with the seqs actually settled and the claimed rows as stored, in the order to
        run them (priority, then seq). The rows have ``RUN_COLUMNS`` only unless ``full``, and no
        engine ``Item`` is built per job: ``held`` reads one when a job fails or is deferred."""
        now = self.clock.now()
        token = uuid.uuid4()
        until = now + lease
        values: dict[str, Any] = {
            "now": now, "queue": queue, "limit": limit, "lease_until": until,
            "token": token, "worker": worker, "seqs": seqs, "tokens": tokens,
        }  # fmt: skip
        if results is not None:
            values["results"] = [None if r is None else jsonutil.dumps(r).decode() for r in results]
        name = "settle_and_claim" if results is not None else "settle_delete_and_claim"
        query = _render(name, full)
        async with wrapped("settle and claim"):
            target = conn if conn is not None else self.pool
            rows = await target.fetch(query.numbered, *query.args(values))
        done: set[int] = set()
        claimed = []
        for r in rows:
            if r["done_seqs"] is not None:
                done.update(r["done_seqs"])
            if r["seq"] is not None:
                claimed.append(ClaimedRow(cast(Mapping[str, Any], r), token, until))
        if len(claimed) > 1:
            claimed.sort(key=_run_order)
        return done, claimed

    async def held(self, claim: ClaimedRow) -> Claimed:
        """The engine's view of a job still held under ``claim`` (its whole row, read now),
        for the engine's lease-checked transitions. Raises ``LeaseLostError`` when the lease
        is gone (recovered, cancelled, finished or purged meanwhile)."""
        query = _render("held")
        values = {"seq": claim.row["seq"], "token": claim.lease_token}
        async with wrapped("held"):
            row = await self.pool.fetchrow(query.numbered, *query.args(values))
        if row is None:
            raise LeaseLostError(
                f"job {claim.row['id']} is no longer held under lease {claim.lease_token}: it "
                "was recovered, cancelled, finished or purged meanwhile"
            )
        return Claimed(self.item(cast(Mapping[str, Any], row)), claim.lease_token,
                       claim.lease_expires_at)  # fmt: skip

    async def heartbeat_leases(
        self, seqs: Sequence[int], tokens: Sequence[uuid.UUID], lease: timedelta
    ) -> set[int]:
        """Push the leases of the jobs (seq, lease token) forward; returns the seqs still held."""
        if not seqs:
            return set()
        now = self.clock.now()
        query = _q("heartbeat_many")
        values = {"lease_until": now + lease, "now": now, "seqs": seqs, "tokens": tokens}
        async with wrapped("heartbeat"):
            rows = await self.pool.fetch(query.numbered, *query.args(values))
        return {int(r["seq"]) for r in rows}

    async def heartbeat_many(self, batch: Sequence[Claimed], lease: timedelta) -> set[int]:
        """Push the leases of ``batch`` forward; returns the seqs still held."""
        return await self.heartbeat_leases(
            [c.item.seq for c in batch], [c.lease_token for c in batch], lease
        )

    async def complete(self, claimed: Claimed, result: Any = None, *, conn: Any = None) -> None:
        """Record success (and the result). On ``conn``, inside the job's own transaction, so
        the job's effects and its completion commit together. Raises ``LeaseLostError``."""
        if not await self._complete(claimed.item.seq, claimed.lease_token, result, conn):
            raise self.engine._lost(claimed)

    async def complete_claim(self, claim: ClaimedRow, result: Any = None, *, conn: Any) -> None:
        """``complete`` for a job claimed by ``settle_and_claim_rows``."""
        if not await self._complete(claim.row["seq"], claim.lease_token, result, conn):
            raise LeaseLostError(
                f"job {claim.row['id']} is no longer held under lease {claim.lease_token}: "
                "it was recovered or cancelled meanwhile"
            )

    async def _complete(self, seq: int, token: uuid.UUID, result: Any, conn: Any) -> bool:
        query = _q("complete")
        values = {
            "now": self.clock.now(),
            "seq": seq,
            "token": token,
            "result": None if result is None else jsonutil.dumps(result).decode(),
        }
        async with wrapped("complete"):
            target = conn if conn is not None else self.pool
            status = await target.execute(query.numbered, *query.args(values))
        return _affected(status) > 0

    async def complete_many(
        self, batch: Sequence[tuple[Claimed, Any]], *, keep: bool = True
    ) -> list[Claimed]:
        """Complete a batch in one statement; returns those whose lease was lost. ``keep=False``
        deletes the rows instead of keeping them as done with their result."""
        if not batch:
            return []
        values: dict[str, Any] = {
            "now": self.clock.now(),
            "seqs": [c.item.seq for c, _ in batch],
            "tokens": [c.lease_token for c, _ in batch],
        }
        if keep:
            values["results"] = [
                None if r is None else jsonutil.dumps(r).decode() for _, r in batch
            ]
        query = _q("complete_many" if keep else "complete_many_delete")
        async with wrapped("complete"):
            rows = await self.pool.fetch(query.numbered, *query.args(values))
        done = {int(r["seq"]) for r in rows}
        return [c for c, _ in batch if c.item.seq not in done]

    # -- recovery, cancel, schedules ---------------------------------------------------------
    async def recover(self, *, limit: int = 1000, default_max: int = 5) -> list[Recovered]:
        """Requeue (or dead-letter, when out of attempts) claimed jobs whose lease ran out."""
        now = self.clock.now()
        query = _q("recover")
        values = {
            "now": now,
            "now_iso": now.isoformat(),
            "limit": limit,
            "default_max": default_max,
            "message": RECOVERED,
            "day": now.date(),
        }
        async with wrapped("recover"):
            rows = await self.pool.fetch(query.numbered, *query.args(values))
        return [
            Recovered(r["id"], r["queue"], r["name"], r["state"] == "dead", r["worker"])
            for r in rows
        ]

    async def retry_dead(
        self,
        ids: Sequence[uuid.UUID] | None = None,
        *,
        queue: str | None = None,
        name: str | None = None,
        tenant: str | None = None,
    ) -> RetryOutcome:
        """Put dead jobs back in their queue with fresh attempts (the engine's replay), except
        those whose de-duplication key a live job holds: retrying them would break "one
        queued or running job per key", so they stay dead and are returned as refused."""
        values: dict[str, object] = {"ids": list(ids) if ids else None, "queue": queue,
                                     "name": name, "tenant": tenant}  # fmt: skip
        query = _q("dead_for_retry")
        for _ in range(3):  # a live job may take a key between the look-up and the replay
            async with wrapped("retry"):
                rows = await self.pool.fetch(query.numbered, *query.args(values))
            # The latest dead job of a key no live job holds is retried; the others keep it.
            winners = {
                (r["dedup_key"], r["tenant"]): r["id"]
                for r in rows
                if r["dedup_key"] is not None and r["holder"] is None and r["nth"] == 1
            }
            free: list[uuid.UUID] = []
            refused: list[HeldKey] = []
            for r in rows:
                key = r["dedup_key"]
                if key is None or winners.get((key, r["tenant"])) == r["id"]:
                    free.append(r["id"])
                elif r["holder"] is not None:
                    refused.append(HeldKey(r["id"], key, r["holder"], True))
                else:
                    refused.append(HeldKey(r["id"], key, winners[(key, r["tenant"])], False))
            if not free:
                return RetryOutcome(0, refused)
            try:
                retried = await self.engine.replay(ItemFilter(ids=free))
            except StoreError as exc:
                if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                    continue
                raise
            return RetryOutcome(retried, refused)
        raise StoreError(
            "retry: live jobs kept taking the de-duplication keys of the dead jobs being "
            "retried; nothing was retried, try again"
        )

    async def recovered_on(self, day: date) -> int:
        query = _q("recovered_on")
        async with wrapped("recoveries"):
            return int(await self.pool.fetchval(query.numbered, day))

    async def recoveries(self, since: date) -> list[tuple[date, str, int]]:
        query = _q("recoveries")
        async with wrapped("recoveries"):
            rows = await self.pool.fetch(query.numbered, since)
        return [(r["day"], r["queue"], int(r["recovered"])) for r in rows]

    async def cancel(self, id: uuid.UUID, reason: str = CANCELLED) -> bool:
        """End a queued or running job as dead; False when it was already finished."""
        now = self.clock.now()
        query = _q("cancel")
        values = {"now": now, "now_iso": now.isoformat(), "message": reason, "id": id}
        async with wrapped("cancel"):
            return bool(await self.pool.fetch(query.numbered, *query.args(values)))

    async def tick(self, conn: Any, schedule: str, tick: datetime, job_id: uuid.UUID) -> bool:
        """Claim (schedule, tick) inside ``conn``'s transaction; True for the one winner."""
        query = _q("tick")
        values = {"schedule": schedule, "tick": tick, "job_id": job_id, "now": self.clock.now()}
        async with wrapped("tick"):
            return bool(await conn.fetch(query.numbered, *query.args(values)))

    async def dead_count(self) -> int:
        query = _q("dead_count")
        async with wrapped("dead count"):
            return int(await self.pool.fetchval(query.numbered, CANCELLED))

    async def result(self, id: uuid.UUID) -> Any:
        async with wrapped("result"):
            value = await self.pool.fetchval(_q("result").numbered, id)
        return None if value is None else jsonutil.loads(value)


__all__ = [
    "CANCELLED",
    "JOBS",
    "RECOVERED",
    "RUN_COLUMNS",
    "ClaimedRow",
    "HeldKey",
    "JobRef",
    "JobStore",
    "LeaseLostError",
    "NewJob",
    "Recovered",
    "RetryOutcome",
    "StoreError",
]
