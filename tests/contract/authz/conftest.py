"""One authorization store per backend, so the contract suite runs against every one of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tether.authz import MemoryAuthzStore, SqlAuthzStore
from tether.authz.port import AuthzStore

CAPS = ["trade:approve", "trade:view", "trade:*", "availability:edit:own", "admin:all"]


async def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AuthzStore:
    made: AuthzStore
    if kind == "memory":
        made = MemoryAuthzStore()
    elif kind == "sqlite":
        sqlite = SqlAuthzStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'authz.db'}")
        await sqlite.create_sqlite_schema()
        made = sqlite
    else:
        made = SqlAuthzStore.from_url(request.getfixturevalue("pg_dsn"))
    await made.sync_capabilities(CAPS)
    async with made.transaction() as tx:
        for user in ("alice", "bob"):
            await tx.add_user(user)
        for org in ("acme", "globex"):
            await tx.add_org(org)
    return made


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthzStore]:
    made = await _open(request.param, request, tmp_path)
    yield made
    await made.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlAuthzStore]:
    """The stores that write in the caller's SQLAlchemy session (the memory store has none)."""
    made = await _open(request.param, request, tmp_path)
    assert isinstance(made, SqlAuthzStore)
    yield made
    await made.close()
