"""Engine, sessions and schema setup for Postgres (production) and SQLite (demo)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from examples.tradedesk.models import Base
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tether.store.postgres import ddl as pg_schema
from tether.store.sqlite import ddl as sqlite_ddl


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
                await conn.exec_driver_sql(pg_schema.full_schema_sql())
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; handlers open the transaction with ``session.begin()``."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as s:
        yield s
