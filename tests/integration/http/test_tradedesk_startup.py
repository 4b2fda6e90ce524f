"""The reference app starts on a fresh, empty PostgreSQL database with either driver, and
three instances starting at the same moment all succeed and leave one copy of everything."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest
from examples.tradedesk.authz import REGISTRY, ROLES
from examples.tradedesk.settings import Settings

from tests.integration.http import tradedesk_starter

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
INSTANCES = 3
DRIVERS = ["asyncpg", "psycopg"]


def url(dsn: str, driver: str) -> str:
    return f"postgresql+{driver}://" + dsn.split("://", 1)[1]


def start_at_once(database_url: str, instances: int) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(instances)
    results = ctx.Queue()
    args = (barrier, results, database_url)
    procs = [ctx.Process(target=tradedesk_starter.run, args=args) for _ in range(instances)]
    for p in procs:
        p.start()
    try:
        return [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


def counts(dsn: str) -> dict[str, int]:
    queries = {
        "capabilities": "SELECT count(*) FROM tether_authz_capabilities",
        "roles": "SELECT count(*) FROM tether_authz_roles",
        "role grants": "SELECT count(*) FROM tether_authz_user_roles",
        "business tables": "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'td\\_%'",
        "outbox tables": "SELECT count(*) FROM pg_tables WHERE tablename = 'tether_outbox'",
    }
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(sql).fetchone()[0] for name, sql in queries.items()}  # type: ignore[index]


def expected() -> dict[str, int]:
    return {
        "capabilities": len(REGISTRY.known),
        "roles": len(ROLES),
        "role grants": len(Settings().api_keys),
        "business tables": 4,
        "outbox tables": 1,
    }


@pytest.mark.parametrize("driver", DRIVERS)
def test_one_instance_starts_on_an_empty_database(empty_pg_dsn: str, driver: str) -> None:
    assert start_at_once(url(empty_pg_dsn, driver), 1) == ["200"]
    assert counts(empty_pg_dsn) == expected()


@pytest.mark.parametrize("driver", DRIVERS)
def test_three_instances_starting_at_once_all_succeed(empty_pg_dsn: str, driver: str) -> None:
    outcomes = start_at_once(url(empty_pg_dsn, driver), INSTANCES)
    assert outcomes == ["200"] * INSTANCES, "\n".join(outcomes)
    assert counts(empty_pg_dsn) == expected()
