"""Fixtures for the jobs tests: one database for the package (emptied before each test: creating
and dropping a database costs seconds on this machine), a pool, a private registry per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from tests.support import pg, services
from tether.jobs import JobRegistry, Jobs, JobStore
from tether.queue.postgres import create_pool

_TABLES = "tether_jobs, tether_job_ticks, tether_job_recoveries"


@pytest.fixture(scope="package")
def module_dsn() -> Iterator[str]:
    services.require("postgres")
    with pg.fresh_database() as dsn:
        yield dsn


@pytest.fixture
def jobs_dsn(module_dsn: str) -> str:
    with psycopg.connect(module_dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES}")
        conn.execute("DROP TABLE IF EXISTS orders, effects")
    return module_dsn


@pytest.fixture
def reg() -> JobRegistry:
    return JobRegistry()


@pytest.fixture
async def jobs(jobs_dsn: str, reg: JobRegistry) -> AsyncIterator[Jobs]:
    pool = await create_pool(jobs_dsn, max_size=12)
    try:
        yield Jobs(JobStore(pool), reg)
    finally:
        await pool.close()
