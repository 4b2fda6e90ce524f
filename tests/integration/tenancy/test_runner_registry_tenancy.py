"""The runner registry under tenancy: its tables carry no tenant policy (they are operator data,
left alone by tether_tenancy), and a role subject to row-level security that is granted them
registers, beats, lists, reads history and prunes, unscoped (docs/tenancy.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import psycopg

from tests.support.tenancy import tenancy_database
from tether.ops.runners import PostgresRunnerRegistry

RUNNER_TABLES = ("tether_runners", "tether_runner_beats", "tether_runner_minutes")


async def test_a_granted_role_under_tenancy_uses_the_registry_unscoped() -> None:
    with tenancy_database(enabled=True) as db:
        with psycopg.connect(db.admin, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT relname, relrowsecurity FROM pg_class WHERE relname = ANY(%s)",
                (list(RUNNER_TABLES),),
            ).fetchall()
            assert dict(rows) == dict.fromkeys(RUNNER_TABLES, False)
            role = db.app.split("://", 1)[1].split("@", 1)[0]
            for table in RUNNER_TABLES:
                conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"')
        pool = await asyncpg.create_pool(db.app, min_size=1, max_size=1)
        try:
            registry = PostgresRunnerRegistry(pool)
            since = datetime.now(UTC) - timedelta(minutes=1)
            runner = await registry.register("realtime-gateway", "gw", 10.0, {"messages_total": 0})
            await registry.beat(runner, {"messages_total": 120})
            await registry.stop(runner, {"messages_total": 180})
            [info] = await registry.runners()
            assert (info.name, info.stats, info.stopped_at is not None) == (
                "gw",
                {"messages_total": 180.0},
                True,
            )
            points = await registry.history(since, 60)
            assert sum(p.rates["messages_total"] for p in points) * 60 == 180
            assert await registry.prune() == 0
        finally:
            await pool.close()
