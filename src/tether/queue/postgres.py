"""The work-item engine on PostgreSQL through asyncpg.

Every operation is one statement on a pooled connection (autocommit), except ``enqueue`` with
``tx=``, which runs on the caller's connection inside the caller's transaction.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

import asyncpg

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
from tether.store.postgres.pooler import PoolerMode, connect_kwargs, hint_for

# A generic plan built while the table was empty keeps re-running the SKIP LOCKED pick per
# row once the table fills (see docs/architecture.md, "The plan-cache trap"). Through a
# transaction pooler statements are unnamed and planned afresh each time, so it is not needed.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@asynccontextmanager
async def _wrapped(what: str) -> AsyncIterator[None]:
    try:
        yield
    except _DRIVER_ERRORS as exc:
        raise StoreError(f"PostgreSQL failed during {what}: {exc}{hint_for(exc)}") from exc


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    pooler_mode: PoolerMode | str | bool | None = PoolerMode.NONE,
    settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """A pool with the settings the engine relies on. ``pooler_mode="transaction"`` when ``dsn``
    leads to a transaction-mode pooler (PgBouncer): every operation is one statement, so
    nothing depends on the session. ``settings`` are further session settings (e.g. the
    admin commands' ``tether.tenant_id``)."""
    options = connect_kwargs(pooler_mode, {**SERVER_SETTINGS, **(settings or {})})
    async with _wrapped("connect"):
        return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, **options)


def _uuid(value: Any) -> uuid.UUID:
    # asyncpg's UUID subclasses uuid.UUID (equal, same hash): no copy needed.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _affected(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 3".
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PostgresQueue(Engine):
    """One queue of ``tether_items`` (or, with ``spec=OUTBOX, queue=None``, the outbox's
    dead-letter, replay, retention and stats operations)."""

    dialect = "postgres"

    def __init__(
        self,
        pool: asyncpg.Pool,
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
        self.pool = pool
        self._owns_pool = False

    @classmethod
    async def connect(
        cls, dsn: str, *, pooler_mode: PoolerMode | str | bool | None = None, **options: Any
    ) -> PostgresQueue:
        """Open a pool of its own (closed by :meth:`close`); see :func:`create_pool`."""
        queue = cls(await create_pool(dsn, pooler_mode=pooler_mode), **options)
        queue._owns_pool = True
        return queue

    async def close(self) -> None:
        """Close the pool if this queue opened it; a pool passed in belongs to the caller."""
        if self._owns_pool:
            await self.pool.close()

    def _item(self, row: Mapping[str, Any]) -> Item:
        return codec.item_from_row(row, self.spec, to_dt=codec.iso_to_dt, to_uuid=_uuid)

    async def _rows(
        self, name: str, params: dict[str, Any], parts: Mapping[str, str] | None = None
    ) -> list[Mapping[str, Any]]:
        query = render("postgres", name, self.spec, **(parts or {}))
        async with _wrapped(name):
            # Records support row["name"], which is all the codec needs.
            return cast(
                list[Mapping[str, Any]], await self.pool.fetch(query.numbered, *query.args(params))
            )

    async def _count(
        self, name: str, params: dict[str, Any], parts: Mapping[str, str] | None = None
    ) -> int:
        query = render("postgres", name, self.spec, **(parts or {}))
        async with _wrapped(name):
            return _affected(await self.pool.execute(query.numbered, *query.args(params)))

    async def enqueue(self, items: Sequence[NewItem], *, tx: object = None) -> list[uuid.UUID]:
        """``tx``: an asyncpg connection, or any handle :mod:`tether.store.drivers` accepts
        (SQLAlchemy ``AsyncSession``/``AsyncConnection``, psycopg ``AsyncConnection``), with
        a transaction open. The rows are written there and never committed here."""
        if not self.spec.has_queue_column:
            raise ConfigError(f"enqueue writes work items; {self.spec.name} is filled elsewhere")
        self._require_queue("enqueue")
        if not items:
            return []
        now = self.clock.now()
        ids = [i.id or new_id() for i in items]
        params: dict[str, Any] = {
            "queue": self.queue,
            "now": now,
            "ids": ids,
            "keys": [i.partition_key for i in items],
            "max_attempts": [i.max_attempts for i in items],
            "available_at": [i.run_at or now for i in items],
            "payloads": [codec.encode_payload(i.payload) for i in items],
        }
        query = render("postgres", "enqueue", self.spec)
        if tx is None:
            async with _wrapped("enqueue"):
                await self.pool.execute(query.numbered, *query.args(params))
        elif isinstance(tx, asyncpg.Connection):
            if not tx.is_in_transaction():
                raise NotInTransactionError(
                    "enqueue(tx=conn): the asyncpg connection has no open transaction, so the "
                    "items would commit on their own; call it inside "
                    "`async with conn.transaction():`"
                )
            async with _wrapped("enqueue"):
                await tx.execute(query.numbered, *query.args(params))
        else:
            await drivers.execute(tx, query, params)
        return ids

    async def claim(self, limit: int, *, lease: timedelta, worker: str) -> list[Claimed]:
        params = self._claim_params(limit, lease, worker)
        order = render("postgres", "key_order", self.spec).sql if self.key_ordering else ""
        rows = await self._rows("claim", params, {"key_order": order})
        return self._claimed(rows, params)

    async def complete_many(self, batch: Sequence[Claimed]) -> list[Claimed]:
        """Complete a batch in one round trip; returns the items whose lease was lost."""
        if not batch:
            return []
        name = "complete_many_keep" if self.keep_done else "complete_many_delete"
        params: dict[str, Any] = {
            "seqs": [c.item.seq for c in batch],
            "tokens": [c.lease_token for c in batch],
            "now": self.clock.now(),
        }
        done = {int(r["seq"]) for r in await self._rows(name, params)}
        return [c for c in batch if c.item.seq not in done]
