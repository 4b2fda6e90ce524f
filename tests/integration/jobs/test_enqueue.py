"""Enqueueing: validation before anything is written, the caller's transaction on every
driver, de-duplication keys, bulk enqueue, options."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from tether.core.errors import ConfigError, StoreError
from tether.jobs import InvalidJobArgumentsError, JobCall, JobRegistry, Jobs, UnknownJobError
from tether.store.drivers import NotInTransactionError


def define(reg: JobRegistry) -> None:
    @reg.job(name="send_receipt", queue="mail", max_attempts=3, timeout=20)
    async def send_receipt(order_id: int, email: str, at: datetime | None = None) -> str:
        return f"sent {order_id}"

    @reg.job(name="resize")
    def resize(path: str) -> None:
        return None


async def count(jobs: Jobs) -> int:
    return int(await jobs.store.pool.fetchval("SELECT count(*) FROM tether_jobs"))


async def test_enqueue_records_the_options(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    when = datetime(2030, 1, 1, tzinfo=UTC)
    ref = await jobs.enqueue(
        "send_receipt", {"order_id": "7", "email": "a@b.c", "at": when}, priority=5
    )
    assert ref.created and ref.id is not None
    item = await jobs.store.engine.get(ref.id)
    assert item.payload == {"order_id": 7, "email": "a@b.c", "at": "2030-01-01T00:00:00Z"}
    assert item.queue == "mail" and item.max_attempts == 3
    assert item.extra["name"] == "send_receipt" and item.extra["priority"] == 5
    assert item.extra["timeout_s"] == 20.0
    later = await jobs.enqueue(reg.get("resize"), {"path": "/x"}, delay=timedelta(hours=1))
    moved = await jobs.store.engine.get(later.id)  # type: ignore[arg-type]
    assert moved.available_at > datetime.now(UTC) + timedelta(minutes=59)
    assert moved.queue == "default"


async def test_unknown_name_fails_with_the_known_names(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    with pytest.raises(UnknownJobError, match="'sned'; known jobs: resize, send_receipt"):
        await jobs.enqueue("sned", {})
    assert await count(jobs) == 0


async def test_bad_arguments_fail_before_commit(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    pool = jobs.store.pool
    await pool.execute("CREATE TABLE orders (id int)")
    async with pool.acquire() as conn:
        with pytest.raises(InvalidJobArgumentsError, match="order_id"):
            async with conn.transaction():
                await conn.execute("INSERT INTO orders VALUES (1)")
                await jobs.enqueue("send_receipt", {"order_id": "x", "email": "a"}, tx=conn)
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0
    for args in ({"email": "a"}, {"order_id": 1, "email": "a", "extra": 1}, ["not", "a", "map"]):
        with pytest.raises(InvalidJobArgumentsError):
            await jobs.enqueue("send_receipt", args)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timezone-aware"):
        await jobs.enqueue("resize", {"path": "p"}, run_at=datetime(2030, 1, 1))
    with pytest.raises(ConfigError, match="not both"):
        await jobs.enqueue("resize", {"path": "p"}, run_at=datetime.now(UTC), delay=timedelta(1))
    with pytest.raises(ConfigError, match="priority"):
        await jobs.enqueue("resize", {"path": "p"}, priority=10**6)
    with pytest.raises(ConfigError, match="max_attempts"):
        await jobs.enqueue("resize", {"path": "p"}, max_attempts=0)
    with pytest.raises(ConfigError, match="timeout"):
        await jobs.enqueue("resize", {"path": "p"}, timeout=-1)
    assert await count(jobs) == 0


class Opaque:
    pass


def test_unstorable_argument_types_fail_at_definition(reg: JobRegistry) -> None:
    with pytest.raises(ConfigError, match="cannot be validated or stored"):

        @reg.job
        def bad(thing: Opaque) -> None: ...

    with pytest.raises(ConfigError, match="ordinary named parameter"):

        @reg.job
        def star(*things: int) -> None: ...

    with pytest.raises(ConfigError, match="transactional=True"):

        @reg.job(transactional=True)
        def sync_tx(x: int) -> None: ...


async def test_enqueue_rides_the_callers_transaction(
    jobs: Jobs, reg: JobRegistry, jobs_dsn: str
) -> None:
    define(reg)
    args = {"order_id": 1, "email": "a@b.c"}
    pool = jobs.store.pool
    async with pool.acquire() as conn:
        with pytest.raises(NotInTransactionError):
            await jobs.enqueue("send_receipt", args, tx=conn)
        try:
            async with conn.transaction():
                await jobs.enqueue("send_receipt", args, tx=conn)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        async with conn.transaction():
            await jobs.enqueue("send_receipt", args, tx=conn)
    assert await count(jobs) == 1

    url = jobs_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(text("SELECT 1"))
            await jobs.enqueue("send_receipt", args, tx=session)
    finally:
        await engine.dispose()
    async with await psycopg.AsyncConnection.connect(jobs_dsn) as pconn:
        async with pconn.transaction():
            await jobs.enqueue_many([JobCall("resize", {"path": "a"})] * 2, tx=pconn)
    sync_engine = create_engine(url)
    try:
        with Session(sync_engine) as s, s.begin():
            ref = jobs.enqueue_sync("resize", {"path": "b"}, tx=s, priority=3)
            assert ref.created
    finally:
        sync_engine.dispose()
    assert await count(jobs) == 5


async def test_dedup_key_allows_one_live_job(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    first = await jobs.enqueue("resize", {"path": "a"}, dedup_key="img:1")
    again = await jobs.enqueue("resize", {"path": "a"}, dedup_key="img:1")
    assert first.created and not again.created and again.id == first.id
    batch = await jobs.enqueue_many(
        [JobCall("resize", {"path": "b"}, dedup_key="img:2") for _ in range(3)]
    )
    assert [r.created for r in batch] == [True, False, False]
    assert len({r.id for r in batch}) == 1
    # Once the job is finished the key is free again.
    await jobs.store.cancel(first.id)  # type: ignore[arg-type]
    assert (await jobs.enqueue("resize", {"path": "a"}, dedup_key="img:1")).created
    assert await count(jobs) == 3


async def test_bulk_enqueue_is_validated_as_a_whole(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    calls = [JobCall("resize", {"path": str(i)}) for i in range(500)]
    with pytest.raises(InvalidJobArgumentsError):
        await jobs.enqueue_many([*calls, JobCall("resize", {"path": None})])
    assert await count(jobs) == 0
    refs = await jobs.enqueue_many(calls)
    assert len({r.id for r in refs}) == 500 and await count(jobs) == 500
    known = uuid.uuid4()
    assert (await jobs.enqueue("resize", {"path": "x"}, id=known)).id == known


async def test_a_driver_error_is_a_store_error(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    async with jobs.store.pool.acquire() as conn:
        with pytest.raises(StoreError, match="enqueue"):
            async with conn.transaction():
                with pytest.raises(asyncpg.DataError):
                    await conn.execute("SELECT CAST('x' AS int)")
                await jobs.enqueue("resize", {"path": "x"}, tx=conn)  # the transaction failed
