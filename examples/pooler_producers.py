"""Producers behind a transaction-mode pooler (PgBouncer, Supabase's pooler): one per driver.

A transaction pooler lends a server connection for one transaction at a time, so a driver must
not keep named prepared statements from one transaction to the next. Each producer below opens
its connections with the one setting its driver needs, then writes every order's event in a
transaction of its own, several transactions at once where the driver is async.

Run: ``.venv/bin/python examples/pooler_producers.py postgresql://app@127.0.0.1:6432/app``
(a database with Tether's tables, reached through the pooler). It prints how many events each
driver wrote.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg
import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from tether.outbox import add_event, add_event_sync

ORDERS_PER_DRIVER = 40


# asyncpg: no statement cache, so every statement is sent unnamed.
async def asyncpg_pool(dsn: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, statement_cache_size=0)


# psycopg 3, sync and async: never prepare statements on the server.
def psycopg_connection(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, prepare_threshold=None)


async def psycopg_async_connection(dsn: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(dsn, prepare_threshold=None)


# SQLAlchemy on asyncpg: both statement caches off, asyncpg's and SQLAlchemy's own.
def sqlalchemy_asyncpg_engine(dsn: str) -> AsyncEngine:
    return create_async_engine(
        dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"statement_cache_size": 0, "prepared_statement_cache_size": 0},
    )


# SQLAlchemy on psycopg 3.
def sqlalchemy_psycopg_engine(dsn: str) -> AsyncEngine:
    return create_async_engine(
        dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"prepare_threshold": None},
    )


async def produce_asyncpg(dsn: str, orders: range) -> None:
    pool = await asyncpg_pool(dsn)

    async def place(order: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await add_event(conn, "OrderPlaced", {"order": order}, aggregate_id=str(order))

    try:
        await asyncio.gather(*(place(order) for order in orders))
    finally:
        await pool.close()


def produce_psycopg(dsn: str, orders: range) -> None:
    with psycopg_connection(dsn) as conn:
        for order in orders:
            with conn.transaction():
                add_event_sync(conn, "OrderPlaced", {"order": order}, aggregate_id=str(order))


async def produce_psycopg_async(dsn: str, orders: range) -> None:
    async with await psycopg_async_connection(dsn) as conn:
        for order in orders:
            async with conn.transaction():
                await add_event(conn, "OrderPlaced", {"order": order}, aggregate_id=str(order))


async def produce_sqlalchemy(engine: AsyncEngine, orders: range) -> None:
    async def place(order: int) -> None:
        async with AsyncSession(engine) as session, session.begin():
            await add_event(session, "OrderPlaced", {"order": order}, aggregate_id=str(order))

    try:
        await asyncio.gather(*(place(order) for order in orders))
    finally:
        await engine.dispose()


def producers(dsn: str) -> dict[str, Callable[[range], Awaitable[None]]]:
    """Every driver's producer, by name."""
    return {
        "asyncpg": lambda orders: produce_asyncpg(dsn, orders),
        "psycopg": lambda orders: asyncio.to_thread(produce_psycopg, dsn, orders),
        "psycopg-async": lambda orders: produce_psycopg_async(dsn, orders),
        "sqlalchemy-asyncpg": lambda orders: produce_sqlalchemy(
            sqlalchemy_asyncpg_engine(dsn), orders
        ),
        "sqlalchemy-psycopg": lambda orders: produce_sqlalchemy(
            sqlalchemy_psycopg_engine(dsn), orders
        ),
    }


async def main(dsn: str) -> None:
    for n, (name, produce) in enumerate(producers(dsn).items()):
        start = n * ORDERS_PER_DRIVER
        await produce(range(start, start + ORDERS_PER_DRIVER))
        print(f"{name}: {ORDERS_PER_DRIVER} events")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pooler_producers.py postgresql://user@pooler-host:6432/db")
    asyncio.run(main(sys.argv[1]))
