"""Two Authz instances over one Postgres database: a writer, and a reader with its own cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.wiring import OutboxEventWriter

REGISTRY = Registry(["trade:approve", "trade:view", "availability:post"])


@pytest.fixture
async def writer(pg_dsn: str) -> AsyncIterator[Authz]:
    store = SqlAuthzStore.from_url(pg_dsn, events=OutboxEventWriter())
    authz = Authz(store, REGISTRY)
    await authz.sync()
    for user in ("alice", "bob"):
        await authz.add_user(user)
    for org in ("acme", "globex"):
        await authz.add_org(org)
    yield authz
    await store.close()


@pytest.fixture
async def reader(pg_dsn: str, writer: Authz) -> AsyncIterator[Authz]:
    store = SqlAuthzStore.from_url(pg_dsn)
    yield Authz(store, REGISTRY)
    await store.close()
