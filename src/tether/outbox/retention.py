"""Retention for the outbox: forget published rows, old dead letters and idempotency keys.

Published rows are deleted by the relay at once unless it keeps them (``keep_published``);
dead letters wait for a person, so they are kept longer, or forever with ``dead=None``.
Idempotency keys must outlive any retry of the request that wrote them. Published rows moved
to the monthly-partitioned archive (PostgreSQL, ``archive=True``) go a month at a time: whole
partitions are dropped (:mod:`tether.outbox.partitions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from tether.core.errors import ConfigError
from tether.outbox import partitions
from tether.queue.ports import ItemFilter, ItemState
from tether.store import drivers, sqlfile


class _Sweeper(Protocol):
    async def sweep(
        self,
        older_than: timedelta,
        *,
        states: tuple[ItemState, ...],
        filter: ItemFilter | None = None,
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    published: timedelta = timedelta(days=7)
    dead: timedelta | None = timedelta(days=30)
    idempotency_keys: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        for name in ("published", "dead", "idempotency_keys"):
            value = getattr(self, name)
            if value is not None and value < timedelta(0):
                raise ConfigError(f"retention {name} must not be negative, got {value}")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    published: int
    dead: int
    idempotency_keys: int
    archived_months: tuple[str, ...] = ()  # archive partitions dropped (archive=True)


async def sweep_keys(target: object, older_than: timedelta, *, tenant: str | None = None) -> int:
    """Delete idempotency keys of events older than ``older_than`` through ``target``; with
    ``tenant``, that tenant's keys only."""
    query = sqlfile.queries("tether.outbox", drivers.dialect_of(target))["sweep_keys"]
    values: dict[str, object] = {"before": datetime.now(UTC) - older_than, "tenant": tenant}
    return len(await drivers.execute(target, query, values))


async def run_once(
    admin: _Sweeper,
    connection: object,
    policy: RetentionPolicy,
    *,
    archive: bool = False,
    tenant: str | None = None,
) -> RetentionReport:
    """One retention pass. ``admin`` is the outbox's item admin (``PostgresQueue`` or
    ``SqliteQueue`` with ``spec=OUTBOX``); ``connection`` an open handle for the keys table,
    inside a transaction the caller commits. ``archive=True`` also drops the archive's months
    older than ``policy.published``; it needs an asyncpg ``connection``. ``tenant`` sweeps
    that tenant's rows and keys only; the archive's months hold every tenant, so it cannot be
    combined with ``archive=True``."""
    if archive and tenant is not None:
        raise ConfigError(
            "archive=True drops whole months of the archive, which hold every tenant's rows: "
            "it cannot be limited to one tenant"
        )
    only = None if tenant is None else ItemFilter(extra={"tenant_id": tenant})
    if archive and not isinstance(
        connection, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
    ):
        raise ConfigError(
            f"archive=True drops PostgreSQL partitions: it needs an asyncpg connection, "
            f"got {type(connection).__qualname__}"
        )
    published = await admin.sweep(policy.published, states=(ItemState.DONE,), filter=only)
    dead = 0
    if policy.dead is not None:
        dead = await admin.sweep(policy.dead, states=(ItemState.DEAD,), filter=only)
    keys = await sweep_keys(connection, policy.idempotency_keys, tenant=tenant)
    months: tuple[str, ...] = ()
    if archive:
        dropped = await partitions.drop_expired(connection, policy.published)  # type: ignore[arg-type]
        published += dropped.default_rows
        months = dropped.dropped
    return RetentionReport(published, dead, keys, months)
