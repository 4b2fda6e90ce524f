"""Run one named query on whatever connection the caller holds, inside the caller's transaction.

Tether's transactional writes (``add_event``, the inbox) accept the caller's own handle:
SQLAlchemy ``AsyncSession``/``AsyncConnection``/``Session``/``Connection``, asyncpg and
psycopg connections, aiosqlite and sqlite3 connections. They execute and never commit.
Drivers are recognized by module name so none of them has to be installed.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tether.core.errors import TetherError
from tether.store.dialect import Dialect, of_engine
from tether.store.sqlfile import Query

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as SAConnection
    from sqlalchemy.ext.asyncio import AsyncConnection as SAAsyncConnection
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

Rows = list[tuple[Any, ...]]


class NotInTransactionError(TetherError):
    """A transactional write was attempted on a connection with no open transaction."""


def _module(target: object) -> str:
    return type(target).__module__.split(".", 1)[0]


def _sa_handle(target: object) -> str | None:
    """The kind ("async" or "sync") of a SQLAlchemy session or connection, else None.

    SQLAlchemy is not imported here (a second or more per process start, e.g. every job
    worker's): an object of one of its classes can only exist once the class's module is
    loaded, so only the modules already in ``sys.modules`` are looked at."""
    asyncio_mod = sys.modules.get("sqlalchemy.ext.asyncio")
    if asyncio_mod is not None and isinstance(
        target, asyncio_mod.AsyncSession | asyncio_mod.AsyncConnection
    ):
        return "async"
    orm_mod = sys.modules.get("sqlalchemy.orm")
    if orm_mod is not None and isinstance(target, orm_mod.Session):
        return "sync"
    engine_mod = sys.modules.get("sqlalchemy.engine")
    if engine_mod is not None and isinstance(target, engine_mod.Connection):
        return "sync"
    return None


def _sa_dialect(target: AsyncSession | SAAsyncConnection | Session | SAConnection) -> Dialect:
    aio, orm = sys.modules.get("sqlalchemy.ext.asyncio"), sys.modules.get("sqlalchemy.orm")
    session = (aio is not None and isinstance(target, aio.AsyncSession)) or (
        orm is not None and isinstance(target, orm.Session)
    )
    bind = target.get_bind() if session else target  # type: ignore[union-attr]
    return of_engine(bind)


def dialect_of(target: object) -> Dialect:
    if _sa_handle(target) is not None:
        return _sa_dialect(target)  # type: ignore[arg-type]
    module = _module(target)
    if module in ("asyncpg", "psycopg"):
        return "postgres"
    if module in ("aiosqlite", "sqlite3"):
        return "sqlite"
    raise TetherError(
        f"cannot write through a {type(target).__qualname__}: pass a SQLAlchemy session or "
        "connection, or an asyncpg, psycopg, aiosqlite or sqlite3 connection"
    )


def sqlite_time(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so SQLite compares times by comparing strings."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def sqlite_values(values: dict[str, object]) -> dict[str, object]:
    """SQLite stores ids as text and times as fixed-width ISO-8601 UTC text."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, uuid.UUID):
            out[key] = str(value)
        elif isinstance(value, datetime):
            out[key] = sqlite_time(value)
        elif isinstance(value, bytes):
            out[key] = value.decode()
        else:
            out[key] = value
    return out


def _pg_text_values(values: dict[str, object]) -> dict[str, object]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


async def execute(target: object, query: Query, values: dict[str, object]) -> Rows:
    """Execute ``query`` on an async handle; return all rows (empty for plain writes)."""
    if _sa_handle(target) == "async":
        from sqlalchemy import text

        sqlite = _sa_dialect(target) == "sqlite"  # type: ignore[arg-type]
        params = sqlite_values(values) if sqlite else _pg_text_values(values)
        result = await target.execute(text(query.sql), params)  # type: ignore[attr-defined]
        return (
            [tuple(r) for r in result.fetchall()] if getattr(result, "returns_rows", True) else []
        )
    module = _module(target)
    if module == "asyncpg":
        if not target.is_in_transaction():  # type: ignore[attr-defined]
            raise NotInTransactionError(
                "asyncpg connection has no open transaction: "
                "call inside `async with conn.transaction():`"
            )
        args = query.args(_pg_text_values(values))
        records = await target.fetch(query.numbered, *args)  # type: ignore[attr-defined]
        return [tuple(r) for r in records]
    if module == "psycopg":
        _check_psycopg(target)
        cur = await target.execute(query.pyformat, _pg_text_values(values))  # type: ignore[attr-defined]
        return list(await cur.fetchall()) if cur.description else []
    if module == "aiosqlite":
        cursor = await target.execute(query.sql, sqlite_values(values))  # type: ignore[attr-defined]
        rows = await cursor.fetchall()
        await cursor.close()
        return [tuple(r) for r in rows]
    dialect_of(target)  # raises with a clear message for unknown handles
    raise TetherError(f"{type(target).__qualname__} is synchronous: use the *_sync function")


def execute_sync(target: object, query: Query, values: dict[str, object]) -> Rows:
    """Execute ``query`` on a synchronous handle; return all rows (empty for plain writes)."""
    if _sa_handle(target) == "sync":
        from sqlalchemy import text

        sqlite = _sa_dialect(target) == "sqlite"  # type: ignore[arg-type]
        params = sqlite_values(values) if sqlite else _pg_text_values(values)
        result = target.execute(text(query.sql), params)  # type: ignore[attr-defined]
        return (
            [tuple(r) for r in result.fetchall()] if getattr(result, "returns_rows", True) else []
        )
    module = _module(target)
    if module == "psycopg":
        _check_psycopg(target)
        cur = target.execute(query.pyformat, _pg_text_values(values))  # type: ignore[attr-defined]
        return list(cur.fetchall()) if cur.description else []
    if module == "sqlite3":
        cursor = target.execute(query.sql, sqlite_values(values))  # type: ignore[attr-defined]
        return [tuple(r) for r in cursor.fetchall()]
    dialect_of(target)
    raise TetherError(f"{type(target).__qualname__} is asynchronous: await the async function")


def _check_psycopg(conn: Any) -> None:
    # In autocommit mode with no transaction block each statement would commit on its own.
    if conn.autocommit and conn.info.transaction_status == 0:  # 0 = IDLE
        raise NotInTransactionError(
            "psycopg connection is in autocommit mode outside a transaction: "
            "call inside `with conn.transaction():`"
        )
