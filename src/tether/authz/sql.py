"""SQLAlchemy adapter of the authorization store, for PostgreSQL (asyncpg) and SQLite (aiosqlite).

Writes run in the caller's ``AsyncSession`` when one is given (never committed here), so a
grant commits together with the business change that caused it. On PostgreSQL each change
also bumps ``tether_authz_version`` and calls ``pg_notify('tether_authz', user)`` in the same
transaction; Postgres delivers the notification only on commit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Text,
    bindparam,
    delete,
    event,
    func,
    literal,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import ArgumentError, IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tether.authz import events
from tether.authz import tables as t
from tether.authz.errors import InvalidGrantError, UnknownSubjectError
from tether.authz.events import EventWriter
from tether.authz.model import Grant, GrantRecord
from tether.core.errors import ConfigError
from tether.store import dialect, sqlfile
from tether.store.postgres.pooler import (
    PoolerMode,
    connect_kwargs,
    mode_of,
    sqlalchemy_connect_args,
)
from tether.store.sqlite import ddl as sqlite_ddl
from tether.tenancy import check_tenant_id, tenant_scope

if TYPE_CHECKING:  # asyncpg is the optional ``postgres`` extra; SQLite users lack it
    import asyncpg

CHANNEL = "tether_authz"
_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}  # the async driver of each database
_URL_FORMS = "postgresql://user@host:5432/db or sqlite:///path/to/file.db"
_SECRET = re.compile(r"//[^/@\s]*@")
# In queries/, not the usual sql/ folder: a folder named like this module would shadow it.
_QUERIES = sqlfile.load("tether.authz", "queries/postgres.sql")
_USER = t.user_capabilities
_ROLES = t.user_roles
# The unique index of direct grants: a NULL org (every org) collides with another NULL org.
_GRANT_TERMS = ("expires_at", "granted_by", "granted_at")
_USER_KEY = [
    _USER.c.user_id,
    func.coalesce(_USER.c.org_id, literal_column("''")),
    _USER.c.capability,
]


def _load_statement(*, in_tenant: bool = False) -> Any:
    """A user's grants; ``in_tenant``: only those in the org ``:tenant`` (never global ones)."""
    user = bindparam("user", type_=Text)
    direct = select(
        _USER.c.capability, _USER.c.org_id, _USER.c.expires_at, literal(None, Text).label("role")
    ).where(_USER.c.user_id == user)
    via_role = (
        select(
            t.role_capabilities.c.capability, _ROLES.c.org_id, _ROLES.c.expires_at, _ROLES.c.role
        )
        .join_from(_ROLES, t.role_capabilities, _ROLES.c.role == t.role_capabilities.c.role)
        .where(_ROLES.c.user_id == user)
    )
    if in_tenant:
        tenant = bindparam("tenant", type_=Text)
        direct, via_role = (
            direct.where(_USER.c.org_id == tenant),
            via_role.where(_ROLES.c.org_id == tenant),
        )
    return union_all(direct, via_role)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything Tether stores is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    try:
        return None if value is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-14:00 is in the year 10000 in UTC
        raise InvalidGrantError(f"expiry {value} is past the last time UTC can hold") from None


def _org_is(column: Any, org: str | None) -> ColumnElement[bool]:
    return column.is_(None) if org is None else column == org  # type: ignore[no-any-return]


class _SqlTx:
    def __init__(self, store: SqlAuthzStore, session: AsyncSession) -> None:
        self.store = store
        self.session = session

    async def _run(self, statement: Any, params: Any = None) -> Any:
        try:
            return await self.session.execute(statement, params)
        except IntegrityError as exc:
            raise UnknownSubjectError(
                f"refused by the database: unknown user, org, role or capability ({exc.orig})"
            ) from exc

    async def _exists(self, column: Any, value: str) -> bool:
        found = await self.session.execute(select(column).where(column == value))
        return found.first() is not None

    async def add_user(self, user: str) -> None:
        await self._run(self.store._insert_ignore(t.users).values(id=user))

    async def add_org(self, org: str) -> None:
        await self._run(self.store._insert_ignore(t.orgs).values(id=org))

    async def user_exists(self, user: str) -> bool:
        return await self._exists(t.users.c.id, user)

    async def org_exists(self, org: str) -> bool:
        return await self._exists(t.orgs.c.id, org)

    async def role_exists(self, role: str) -> bool:
        return await self._exists(t.roles.c.name, role)

    async def define_role(self, role: str, capabilities: Iterable[str]) -> None:
        await self._run(self.store._insert_ignore(t.roles).values(name=role))
        # Two instances defining the same role at start-up take turns on the role's row, so
        # neither deletes what the other is inserting; rows already right are left alone.
        await self.session.execute(
            select(t.roles.c.name).where(t.roles.c.name == role).with_for_update()
        )
        rc = t.role_capabilities
        names = sorted(set(capabilities))
        await self._run(delete(rc).where(rc.c.role == role, rc.c.capability.not_in(names)))
        if names:
            rows = [{"role": role, "capability": name} for name in names]
            await self._run(self.store._insert_ignore(rc), rows)

    async def grant(
        self,
        user: str,
        capability: str,
        org: str | None,
        *,
        expires_at: datetime | None,
        granted_by: str | None,
        now: datetime,
    ) -> None:
        # One upsert, not delete-then-insert: concurrent grants of the same capability both
        # succeed and the last one's expiry and author win.
        await self._run(
            self.store._upsert(
                _USER,
                {
                    "user_id": user,
                    "org_id": org,
                    "capability": capability,
                    "expires_at": _utc(expires_at),
                    "granted_by": granted_by,
                    "granted_at": _utc(now),
                },
                key=_USER_KEY,
            )
        )

    async def revoke(self, user: str, capability: str, org: str | None) -> bool:
        result = await self._run(
            delete(_USER).where(
                _USER.c.user_id == user,
                _USER.c.capability == capability,
                _org_is(_USER.c.org_id, org),
            )
        )
        return bool(result.rowcount)

    async def assign_role(
        self,
        user: str,
        role: str,
        org: str,
        *,
        expires_at: datetime | None,
        granted_by: str | None,
        now: datetime,
    ) -> None:
        await self._run(
            self.store._upsert(
                _ROLES,
                {
                    "user_id": user,
                    "org_id": org,
                    "role": role,
                    "expires_at": _utc(expires_at),
                    "granted_by": granted_by,
                    "granted_at": _utc(now),
                },
                key=[_ROLES.c.user_id, _ROLES.c.org_id, _ROLES.c.role],
            )
        )

    async def unassign_role(self, user: str, role: str, org: str) -> bool:
        result = await self._run(
            delete(_ROLES).where(
                _ROLES.c.user_id == user, _ROLES.c.role == role, _ROLES.c.org_id == org
            )
        )
        return bool(result.rowcount)

    async def changed(
        self, event_type: str, payload: dict[str, Any], user: str | None, org: str | None
    ) -> None:
        await self.session.execute(
            update(t.version).where(t.version.c.id == 1).values(value=t.version.c.value + 1)
        )
        if self.store.is_postgres:
            await self.session.execute(select(func.pg_notify(CHANNEL, user or "*")))
        if self.store.events is not None:
            await events.emit(
                self.store.events, self.session, event_type, payload, user=user, org=org
            )


class SqlAuthzStore:
    """Implements :class:`tether.authz.port.AuthzStore` on an SQLAlchemy ``AsyncEngine``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        events: EventWriter | None = None,
        read_pool_size: int = 10,
        pooler_mode: PoolerMode | str | bool | None = None,
    ) -> None:
        """``pooler_mode="transaction"`` when ``engine`` reaches PostgreSQL through a
        transaction-mode pooler (its engine set up with ``pooler.sqlalchemy_connect_args``)."""
        self.engine = engine
        self.pooler_mode = mode_of(pooler_mode)
        self.is_postgres = dialect.of_engine(engine) == "postgres"
        self.read_pool_size = read_pool_size
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._pool_lock = asyncio.Lock()
        # Grant changes become events only through an injected writer
        # (tether.wiring.OutboxEventWriter for the outbox): authz does not import the outbox.
        self.events = events
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._load = _load_statement()
        self._load_in_tenant = _load_statement(in_tenant=True)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        events: EventWriter | None = None,
        pooler_mode: PoolerMode | str | bool | None = None,
        **engine_options: Any,
    ) -> SqlAuthzStore:
        """``postgresql://…`` (driven by asyncpg) or ``sqlite:///path`` (aiosqlite).

        Any other URL raises :class:`ConfigError` naming its scheme (never the whole URL,
        which may hold a password).
        """
        scheme, found, rest = url.partition("://")
        base, _, driver = scheme.lower().partition("+")
        base = "postgresql" if base == "postgres" else base
        if not found or base not in _DRIVERS:
            plain = found and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme)
            shown = f"scheme {scheme!r}" if plain else "no database URL"
            raise ConfigError(f"the capability store takes {_URL_FORMS}, got {shown}")
        url = f"{base}+{driver or _DRIVERS[base]}://{rest}"
        try:
            connect_args = sqlalchemy_connect_args(url, pooler_mode)
            connect_args |= engine_options.pop("connect_args", {})
            engine = create_async_engine(url, connect_args=connect_args, **engine_options)
        except (ArgumentError, InvalidRequestError, ValueError) as exc:
            # The reason, without the URL: the URL may hold a password.
            reason = _SECRET.sub("//***@", str(exc).splitlines()[0])
            raise ConfigError(
                f"the capability store cannot use this {base} URL ({reason}); use {_URL_FORMS}"
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_foreign_keys)
        return cls(engine, events=events, pooler_mode=pooler_mode)

    def _insert_ignore(self, table: Any) -> Any:
        insert = pg_insert if self.is_postgres else sqlite_insert
        return insert(table).on_conflict_do_nothing()

    def _upsert(self, table: Any, row: dict[str, Any], *, key: list[Any]) -> Any:
        """Insert a grant, or give the grant with the same ``key`` this one's terms."""
        insert = (pg_insert if self.is_postgres else sqlite_insert)(table).values(row)
        terms = {name: insert.excluded[name] for name in _GRANT_TERMS}
        return insert.on_conflict_do_update(index_elements=key, set_=terms)

    async def create_sqlite_schema(self) -> None:
        """Migrate an SQLite database to Tether's schema, these tables included, with the one
        SQLite migrator (Postgres uses the schema files and Alembic)."""
        await sqlite_ddl.migrate(self.engine)

    async def sync_capabilities(self, names: Iterable[str]) -> None:
        wanted = set(names)
        async with self._sessions() as session, session.begin():
            stored = set((await session.execute(select(t.capabilities.c.name))).scalars())
            missing = sorted(wanted - stored)
            if missing:  # other instances may be storing the same names right now
                rows = [{"name": n} for n in missing]
                await session.execute(self._insert_ignore(t.capabilities), rows)

    async def capabilities(self) -> frozenset[str]:
        async with self.engine.connect() as conn:
            return frozenset((await conn.execute(select(t.capabilities.c.name))).scalars())

    async def _reads(self) -> asyncpg.Pool[asyncpg.Record]:
        """The asyncpg pool for hot-path reads on PostgreSQL, created on first use."""
        import asyncpg

        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    asyncpg_dsn(self.engine),
                    min_size=1,
                    max_size=self.read_pool_size,
                    **connect_kwargs(self.pooler_mode),
                )
        return self._pool

    async def load_grants(self, user: str, tenant: str | None = None) -> list[Grant]:
        """``user``'s grants; with ``tenant``, only those in that org, read in a transaction
        scoped to it (so a role under row-level security sees them, and only them; on
        PostgreSQL one statement, ``tether_authz_grants_in``, does both)."""
        if self.is_postgres:
            pool = self._pool or await self._reads()
            if tenant is None:
                rows = await pool.fetch(_QUERIES["load_grants"].numbered, user)
            else:
                # One statement that scopes its own transaction, then reads.
                query = _QUERIES["load_grants_in_tenant"]
                values: dict[str, object] = {"user": user, "tenant": check_tenant_id(tenant)}
                rows = await pool.fetch(query.numbered, *query.args(values))
            return [Grant(r["capability"], r["org_id"], r["expires_at"], r["role"]) for r in rows]
        statement = self._load if tenant is None else self._load_in_tenant
        async with self.engine.connect() as conn:
            if tenant is not None:
                await tenant_scope(conn, tenant)  # validates it; SQLite has nothing to scope
            params = {"user": user, "tenant": tenant}
            found = (await conn.execute(statement, params)).mappings().all()
        return [
            Grant(r["capability"], r["org_id"], _aware(r["expires_at"]), r["role"]) for r in found
        ]

    async def list_grants(
        self, *, user: str | None = None, org: str | None = None, tenant: str | None = None
    ) -> list[GrantRecord]:
        """Stored grants, filtered; with ``tenant``, only that org's, in a scoped transaction."""
        if tenant is not None:
            if org is not None and org != tenant:
                return []
            org = tenant
        direct = select(_USER)
        roles = select(_ROLES)
        if user is not None:
            direct, roles = (
                direct.where(_USER.c.user_id == user),
                roles.where(_ROLES.c.user_id == user),
            )
        if org is not None:
            direct, roles = direct.where(_USER.c.org_id == org), roles.where(_ROLES.c.org_id == org)
        async with self.engine.connect() as conn:
            if tenant is not None:
                await tenant_scope(conn, tenant)
            caps = (await conn.execute(direct)).mappings().all()
            assigned = (await conn.execute(roles)).mappings().all()
        return [
            GrantRecord(
                r["user_id"],
                r["org_id"],
                r["capability"],
                None,
                _aware(r["expires_at"]),
                r["granted_by"],
                _aware(r["granted_at"]),
            )
            for r in caps
        ] + [
            GrantRecord(
                r["user_id"],
                r["org_id"],
                None,
                r["role"],
                _aware(r["expires_at"]),
                r["granted_by"],
                _aware(r["granted_at"]),
            )
            for r in assigned
        ]

    async def version(self) -> int:
        if self.is_postgres:
            pool = self._pool or await self._reads()
            return int(await pool.fetchval(_QUERIES["version"].numbered))
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(t.version.c.value))).scalar_one()
        return int(value)

    @asynccontextmanager
    async def transaction(
        self, session: Any = None, tenant: str | None = None
    ) -> AsyncIterator[_SqlTx]:
        """Write in ``session`` (never committed here) or in a transaction of the store's own;
        with ``tenant``, scoped to it first (the caller's session may already be, to the same
        tenant; another one is refused by the database)."""
        if session is not None:
            if tenant is not None:
                await tenant_scope(session, tenant)
            yield _SqlTx(self, session)
            return
        async with self._sessions() as own, own.begin():
            if tenant is not None:
                await tenant_scope(own, tenant)
            yield _SqlTx(self, own)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()


def asyncpg_dsn(engine: AsyncEngine) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, from an SQLAlchemy engine's URL."""
    return str(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
