"""Open the outbox of a configured database for the admin commands (status, dlq).

The dead-letter operations are the work-item engine's (:mod:`tether.queue`) over the
``tether_outbox`` table spec; this module adds the two reads the engine does not have: one
snapshot for ``tether status`` and a filtered count for the confirmation and progress bar.

With a tenant, every connection of the command's private pool is scoped to it (the session
setting ``tether.tenant_id``), so with row-level security on (docs/tenancy.md) a role subject
to it reaches that tenant's rows only; the commands also filter by tenant, which is what
limits a role that bypasses row-level security.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tether.commands import common
from tether.config import Database
from tether.core.errors import ConfigError, EventValidationError
from tether.outbox.table import OUTBOX
from tether.queue import Item, ItemFilter, ItemState
from tether.queue.engine import Engine
from tether.queue.spec import where
from tether.store.postgres.pooler import PoolerMode, mode_of
from tether.store.sqlfile import Query, queries
from tether.tenancy import SETTING, check_tenant_id


@dataclass(frozen=True, slots=True)
class Snapshot:
    pending: int
    in_flight: int
    retrying: int
    dead: int
    done: int
    oldest_pending_age: timedelta | None
    last_seq: int | None  # None: not readable here (one tenant, or a role under RLS)
    taken_at: float  # time.monotonic(), for rates between two snapshots

    @property
    def live(self) -> int:
        return self.pending + self.in_flight


def _age(oldest: Any, now: Any) -> timedelta | None:
    if oldest is None:
        return None

    def dt(v: Any) -> datetime:
        return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))

    return max(timedelta(0), dt(now) - dt(oldest))


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        pending=int(row["pending"]),
        in_flight=int(row["in_flight"]),
        retrying=int(row["retrying"]),
        dead=int(row["dead"]),
        done=int(row["done"]),
        oldest_pending_age=_age(row["oldest"], row["now"]),
        last_seq=None if row["last_seq"] is None else int(row["last_seq"]),
        taken_at=time.monotonic(),
    )


class OutboxAdmin:
    """The engine's admin operations on ``tether_outbox`` plus status and count reads."""

    def __init__(
        self,
        engine: Engine,
        fetch: Callable[[Query, dict[str, Any]], Any],
        tenant: str | None = None,
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self._fetch = fetch
        self._queries = queries("tether.commands", engine.dialect)

    async def snapshot(self) -> Snapshot:
        """Counts of the whole outbox, or of the admin's tenant only (then ``last_seq`` is
        None: the sequence counts every tenant's events)."""
        rows = await self._fetch(self._queries["status"], {"tenant": self.tenant})
        return _snapshot(rows[0])

    async def count(self, f: ItemFilter, states: tuple[ItemState, ...] | None) -> int:
        clause, params = where(OUTBOX, f, self.engine.dialect, queue=None, states=states)
        base = self._queries["count"]
        rows = await self._fetch(Query(base.name, base.sql.replace("{where}", clause)), params)
        return int(rows[0]["n"])

    async def list(self, f: ItemFilter, limit: int) -> list[Item]:
        return await self.engine.list(f, limit=limit)

    async def get_dead(self, id: uuid.UUID) -> Item:
        return await self.engine.get_dead(id)


def parse_tenant(tenant: str | None) -> str | None:
    """The ``--tenant`` option's value, checked with the envelope's rule (exit 2 if invalid)."""
    if tenant is None:
        return None
    try:
        return check_tenant_id(tenant)
    except EventValidationError as exc:
        common.bad_input(f"--tenant: {exc}")


def tenant_session(db: Database, tenant: str | None) -> dict[str, str]:
    """Session settings that scope every connection of a command's pool to ``tenant``."""
    if tenant is None:
        return {}
    if mode_of(db.pooler) is PoolerMode.TRANSACTION:
        # A transaction pooler drops the session setting: the scope would silently be none.
        raise ConfigError(
            "--tenant needs a session of its own: connect directly or through a "
            "session-mode pooler, not a transaction-mode one"
        )
    return {SETTING: tenant}


@asynccontextmanager
async def open_admin(db: Database, tenant: str | None = None) -> AsyncIterator[OutboxAdmin]:
    """The outbox admin of ``db``; with ``tenant`` (checked first) scoped to that tenant."""
    if tenant is not None:
        tenant = check_tenant_id(tenant)
    if db.kind == "postgres":
        async with _postgres(db, tenant) as admin:
            yield admin
    else:
        async with _sqlite(db, tenant) as admin:
            yield admin


@asynccontextmanager
async def _postgres(db: Database, tenant: str | None) -> AsyncIterator[OutboxAdmin]:
    from tether.queue.postgres import PostgresQueue, create_pool

    settings = tenant_session(db, tenant)
    pool = await create_pool(
        db.url, min_size=1, max_size=2, pooler_mode=db.pooler, settings=settings
    )
    try:

        async def fetch(query: Query, params: dict[str, Any]) -> Any:
            return await pool.fetch(query.numbered, *query.args(params))

        yield OutboxAdmin(PostgresQueue(pool, spec=OUTBOX, queue=None), fetch, tenant)
    finally:
        await pool.close()


@asynccontextmanager
async def _sqlite(db: Database, tenant: str | None) -> AsyncIterator[OutboxAdmin]:
    from tether.queue.sqlite import SqliteQueue, open_database, to_sqlite

    common.require_sqlite_file(db)
    conn = await open_database(str(db.sqlite_path))
    try:

        async def fetch(query: Query, params: dict[str, Any]) -> Any:
            values = {k: to_sqlite(v) for k, v in params.items()}
            return list(await conn.execute_fetchall(query.sql, values))

        yield OutboxAdmin(SqliteQueue(conn, spec=OUTBOX, queue=None), fetch, tenant)
    finally:
        await conn.close()
