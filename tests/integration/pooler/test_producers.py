"""A producer on each supported driver, with the documented settings, through the pooler.

The producers are the ones docs/outbox.md shows (examples/pooler_producers.py). Three run at
once per driver, so their transactions share the pooler's server sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from examples.pooler_producers import ORDERS_PER_DRIVER, producers

from tests.support.examples import run_example

pytestmark = pytest.mark.postgres

DRIVERS = ["asyncpg", "psycopg", "psycopg-async", "sqlalchemy-asyncpg", "sqlalchemy-psycopg"]


def test_every_driver_of_the_docs_is_covered() -> None:
    assert sorted(producers("postgresql://unused@127.0.0.1/db")) == sorted(DRIVERS)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_producer_writes_every_event(
    driver: str, pooled_dsn: str, direct_dsn: str, problems_logged: Callable[[], list[str]]
) -> None:
    produce = producers(pooled_dsn)[driver]
    await asyncio.gather(*(produce(range(n * 100, n * 100 + 30)) for n in range(3)))
    conn = await asyncpg.connect(direct_dsn)
    try:
        ids = await conn.fetch("SELECT aggregate_id FROM tether_outbox ORDER BY seq")
    finally:
        await conn.close()
    assert sorted(int(r[0]) for r in ids) == [n * 100 + i for n in range(3) for i in range(30)]
    assert problems_logged() == []


def test_example_runs_through_the_pooler(pooled_dsn: str) -> None:
    stdout = run_example("examples/pooler_producers.py", pooled_dsn)
    for driver in DRIVERS:
        assert f"{driver}: {ORDERS_PER_DRIVER} events" in stdout
