"""The inbox contract on every database: once per consumer and id, rollback forgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from tether.core.ids import new_id
from tether.outbox.inbox import Inbox
from tether.store.sqlite.ddl import migrate


class Tx:
    """Open and close a transaction the way each driver does it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def __aenter__(self) -> Any:
        if isinstance(self.conn, asyncpg.Connection):
            self._tx = self.conn.transaction()
            await self._tx.start()
        return self.conn

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        if isinstance(self.conn, asyncpg.Connection):
            await (self._tx.rollback() if exc_type else self._tx.commit())
        else:
            await (self.conn.rollback() if exc_type else self.conn.commit())


@pytest.fixture(params=["postgres", "sqlite"])
async def conn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "postgres":
        c: Any = await asyncpg.connect(request.getfixturevalue("pg_dsn"))
    else:
        c = await aiosqlite.connect(str(tmp_path / "inbox.db"))
        await migrate(c)
    yield c
    await c.close()


async def test_each_id_once_per_consumer(conn: Any) -> None:
    eid = new_id()
    billing, audit = Inbox("billing"), Inbox("audit")
    async with Tx(conn):
        assert await billing.first_time(conn, eid)
    async with Tx(conn):
        assert not await billing.first_time(conn, eid)
        assert await audit.first_time(conn, str(eid))


async def test_rollback_forgets_the_id(conn: Any) -> None:
    eid, inbox = new_id(), Inbox("billing")
    with pytest.raises(RuntimeError):
        async with Tx(conn):
            assert await inbox.first_time(conn, eid)
            raise RuntimeError("consumer failed")
    async with Tx(conn):
        assert await inbox.first_time(conn, eid)


async def test_handle_skips_repeats(conn: Any) -> None:
    eid, inbox, runs = new_id(), Inbox("billing"), []

    async def work() -> str:
        runs.append(1)
        return "done"

    async with Tx(conn):
        assert await inbox.handle(conn, eid, work) == "done"
    async with Tx(conn):
        assert await inbox.handle(conn, eid, work) is None
    assert runs == [1]
