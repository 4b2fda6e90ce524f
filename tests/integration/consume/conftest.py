"""The database side of the consumer tests: a fresh PostgreSQL database with a ``handled`` table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE handled (event_id text PRIMARY KEY, n int)"))
    yield eng
    await eng.dispose()
