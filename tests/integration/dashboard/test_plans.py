"""Every statement a dashboard page runs reads through an index: each page is run against a
database with enough rows that a sequential scan would be chosen if no index served, while a
proxy pool EXPLAINs each statement with its real arguments. No statement uses OFFSET."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from tests.integration.dashboard.rows import load, load_runners
from tether.dashboard import actions, queries
from tether.dashboard.kinds import parse_filter
from tether.ops.runners import PostgresRunnerRegistry

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ENDPOINT_3 = "00000000-0000-4000-8000-00000000e003"  # rows.py: i = 52 is dead there
BIG = (
    "tether_outbox", "tether_jobs", "tether_webhook_deliveries", "tether_webhook_attempts",
    "tether_runner_beats",
)  # fmt: skip


class Explaining:
    """A pool (and connection) stand-in: EXPLAINs every statement, then runs it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[tuple[str, Any]] = []

    async def _explain(self, sql: str, args: tuple[Any, ...]) -> None:
        if sql.lstrip().upper().startswith(("EXPLAIN", "SET")):
            return
        plan = await self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        self.plans.append((sql, orjson.loads(plan)[0]["Plan"]))

    async def fetch(self, sql: str, *args: Any) -> Any:
        await self._explain(sql, args)
        return await self.conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        await self._explain(sql, args)
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self._explain(sql, args)
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        await self._explain(sql, args)
        return await self.conn.execute(sql, *args)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Explaining]:
        yield self

    def transaction(self) -> Any:
        return self.conn.transaction()


def scans(plan: Any) -> list[tuple[str, str | None]]:
    found = [(plan["Node Type"], plan.get("Relation Name"))]
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


@pytest.fixture
async def explaining(pg_dsn: str) -> AsyncIterator[Explaining]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await load(conn, dead=12_000, done=15_000, outbox_done=5_000, other=6_000)
        # 20 runners beating every 10 s for 6 hours: 40,000 beats, the chart's hour a sixth.
        await load_runners(conn, runners=20, hours=6, every_s=10)
        yield Explaining(conn)
    finally:
        await conn.close()


async def test_every_page_statement_reads_through_an_index(explaining: Explaining) -> None:
    db: Any = explaining
    now = datetime.now(UTC)
    endpoint = uuid.UUID("00000000-0000-4000-8000-00000000e002")
    filters = [
        {"kind": "outbox"},
        {"kind": "outbox", "type": "Type7", "tenant": "tenant-7", "error": "code 3"},
        {"kind": "outbox", "topic": "topic-3", "after": "2h", "before": "1m"},
        {"kind": "jobs"},
        {"kind": "jobs", "type": "job_4", "topic": "q4", "error": "bad input"},
        {"kind": "deliveries"},
        {"kind": "deliveries", "endpoint": ENDPOINT_3, "tenant": "tenant-3", "type": "Type7"},
    ]
    for form in filters:
        f = parse_filter(form, now)
        # A window in the proportion of production's (5,000 of a million dead letters) to
        # these tables' size: over the whole table the planner would rightly scan it.
        page = await queries.dead_page(db, f, None, 50, window=500)
        assert page.items, form
        if page.next is not None:
            second = await queries.dead_page(db, f, page.next, 50, window=500)
            assert {i.id for i in second.items}.isdisjoint({i.id for i in page.items})
        first = page.items[0]
        assert (await queries.item(db, f.kind, first.id)) is not None
        if f.kind.name != "outbox":  # any state, by the unique id index
            assert (await queries.item(db, f.kind, uuid.uuid4())) is None
        await actions.count(db, f, now)  # the confirmation page's count (the engine's SQL)
    # The confirmation counts exactly within its time budget, else shows the estimate.
    every = parse_filter({"kind": "outbox"}, now)
    assert (await actions.count(db, every, now)).exact
    rushed = await actions.count(db, every, now, budget_ms=1)
    assert not rushed.exact and rushed.value > 10_000 and str(rushed).startswith("≈")
    # The overview: exact counts up to the cap, the planner's estimate beyond it.
    counts = {c.name: c for c in await queries.table_counts(db)}
    outbox, jobs = counts["tether_outbox"], counts["tether_jobs"]
    assert outbox.pending.exact and outbox.pending.value == 200
    assert not outbox.dead.exact and 10_001 <= outbox.dead.value < 15_000
    assert str(outbox.dead).startswith("≈")
    assert jobs.dead.exact and jobs.dead.value == 6_000
    assert not jobs.done.exact and 10_000 < jobs.done.value < 20_000
    assert outbox.oldest_pending is not None and outbox.last_seq is not None
    # The runners table, the chart's ranges (the last hour from the beats, 6 h and 24 h from
    # the per-minute rows the loader rebuilt) and the realtime page's last two beats of each.
    registry = PostgresRunnerRegistry(db)
    runners = await registry.runners()
    assert len(runners) == 20
    assert await registry.history(now - timedelta(hours=1), 30)
    assert await registry.history(now - timedelta(minutes=2), 30)
    day = await registry.history(now - timedelta(hours=24), 600)
    published = [p.at for p in day if p.rates.get("published_total")]
    assert published and max(published) - min(published) >= timedelta(hours=5, minutes=40)
    assert await registry.history(now - timedelta(hours=6), 180)
    beats = await queries.last_beats(db, [r.id for r in runners if r.kind == "realtime-gateway"])
    assert len(beats) == 4 and all(len(b) == 2 for b in beats.values())
    rows, nxt = await queries.endpoints(db, None, 20)
    assert len(rows) == 20 and nxt is not None
    await queries.endpoints(db, nxt, 20)
    log, before = await queries.endpoint_attempts(db, endpoint, None, 50)
    assert len(log) == 50 and before is not None
    await queries.endpoint_attempts(db, endpoint, before, 50)
    await queries.delivery_attempts(db, uuid.uuid4())
    await queries.recoveries(db, date.today() - timedelta(days=13))

    assert len(explaining.plans) > 40
    sizes = {
        t: await explaining.conn.fetchval(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = $1", t
        )
        for t in BIG
    }
    assert sizes["tether_outbox"] > 15_000 and sizes["tether_jobs"] > 15_000
    assert sizes["tether_runner_beats"] > 15_000
    for sql, plan in explaining.plans:
        assert "OFFSET" not in sql.upper(), sql
        if sql.startswith("SELECT count(*) FROM") and "state IN ('dead')" in sql:
            # The bulk confirmation's exact count: it reads the rows the action is about to
            # rewrite anyway, within a time budget (else it shows the planner's estimate); when
            # they are half the table (as the dead outbox rows are here) a sequential read is
            # the planner's right choice.
            continue
        # A table smaller than the overview's cap may be read whole: that costs no more
        # than the cap the statement has anyway.
        seq = [t for node, t in scans(plan) if node == "Seq Scan" and sizes.get(t, 0) > 10_001]
        assert not seq, f"sequential scan of {seq} in: {sql}\n{orjson.dumps(plan).decode()[:2000]}"
