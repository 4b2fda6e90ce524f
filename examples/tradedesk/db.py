"""Engine, sessions and schema setup for Postgres (production) and SQLite (demo)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from examples.tradedesk.models import Base
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from tether.store.postgres import ddl as pg_schema
from tether.store.sqlite import ddl as sqlite_ddl

# Any number of app instances may start at once on one empty database: each sets up the
# schema while holding this transaction-scoped advisory lock (it works through a transaction
# pooler too), so the first creates everything and the others find it there.
SETUP_LOCK = 0x7472_6164_6573_6B  # "tradesk"


async def set_up(engine: AsyncEngine, seed: Callable[[], Awaitable[None]]) -> None:
    """Create the schema if missing, then ``seed`` (reference data), one instance at a time."""
    if engine.dialect.name == "sqlite":
        await create_schema(engine)
        await seed()
        return
    async with engine.begin() as lock:
        await lock.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETUP_LOCK})
        # The schema commits on its own connection, so seeding (on others) can use it while
        # this transaction still holds the lock.
        await create_schema(engine)
        await seed()


async def create_schema(engine: AsyncEngine) -> None:
    """Tether's tables (normally from its Alembic migrations), then the business tables."""
    if engine.dialect.name == "sqlite":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await sqlite_ddl.migrate(raw.driver_connection)  # type: ignore[arg-type]
    else:
        async with engine.begin() as conn:
            exists = await conn.scalar(text("SELECT to_regclass('tether_outbox') IS NOT NULL"))
            if not exists:
                await _run_script(conn, pg_schema.full_schema_sql())
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def _run_script(conn: AsyncConnection, script: str) -> None:
    """Run a multi-statement SQL script in the connection's transaction.

    asyncpg sends parameterless ``execute`` as a simple query, which may hold many statements;
    through SQLAlchemy it would be a prepared statement, which may hold only one.
    """
    if conn.dialect.driver == "asyncpg":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(script)  # type: ignore[union-attr]
    else:
        await conn.exec_driver_sql(script)


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; handlers open the transaction with ``session.begin()``."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as s:
        yield s
