"""The inbox, the capability store with its invalidation watcher, and ``tether migrate``,
through the pooler."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from typer.testing import CliRunner

from tests.integration.pooler.conftest import Pooler
from tests.support import pg
from tether.authz import Authz, InvalidationWatcher, Registry, SqlAuthzStore, listen_dsn_of
from tether.cli import app
from tether.outbox import Inbox
from tether.store.postgres.pooler import connect_kwargs

pytestmark = pytest.mark.postgres


async def test_inbox_skips_repeats(
    pooled_dsn: str, problems_logged: Callable[[], list[str]]
) -> None:
    pool = await asyncpg.create_pool(
        pooled_dsn, min_size=4, max_size=4, **connect_kwargs("transaction")
    )
    inbox = Inbox("billing")
    ids = [uuid.uuid4() for _ in range(20)]

    async def deliver(event_id: uuid.UUID) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await inbox.first_time(conn, event_id)

    try:
        # Every event delivered three times, concurrently: each is processed once.
        firsts = await asyncio.gather(*(deliver(i) for i in ids * 3))
    finally:
        await pool.close()
    assert sum(firsts) == len(ids)
    assert problems_logged() == []


async def test_capability_checks_and_invalidation_by_polling(
    pooled_dsn: str, problems_logged: Callable[[], list[str]]
) -> None:
    registry = Registry(["trade:view"])
    writer_store = SqlAuthzStore.from_url(pooled_dsn, pooler_mode="transaction")
    reader_store = SqlAuthzStore.from_url(pooled_dsn, pooler_mode="transaction")
    writer, reader = Authz(writer_store, registry), Authz(reader_store, registry)
    assert listen_dsn_of(reader_store) is None  # LISTEN needs a session: poll instead
    assert reader.cache is not None
    watcher = InvalidationWatcher(reader_store, reader.cache, listen_dsn=None, interval=0.05)
    try:
        await writer.sync()
        await writer.add_user("alice")
        await writer.add_org("acme")
        await watcher.start()
        await writer.grant("alice", "trade:view", "acme")
        checks = await asyncio.gather(
            *(reader.has("alice", "trade:view", "acme") for _ in range(20))
        )
        assert all(checks)
        await writer.revoke("alice", "trade:view", "acme")
        async with asyncio.timeout(5):
            while await reader.has("alice", "trade:view", "acme"):
                await asyncio.sleep(0.01)  # the watcher's next poll clears the cache
        assert watcher.polls_that_cleared >= 1
    finally:
        await watcher.stop()
        await writer_store.close()
        await reader_store.close()
    assert problems_logged() == []


@pytest.fixture
def empty_pooled_dsn(pooler: Pooler) -> Iterator[str]:
    with pg.fresh_database(template="template0") as dsn:
        yield pooler.dsn(dsn)


def test_migrate(empty_pooled_dsn: str) -> None:
    env = {"TETHER_DATABASE_URL": empty_pooled_dsn, "TETHER_DATABASE_POOLER": "transaction"}
    for _ in range(2):  # creates, then finds everything current
        result = CliRunner().invoke(app, ["migrate"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "(heads)" in result.output
