"""The outbox's indexes on PostgreSQL: what settling a row costs, and which look-ups they serve.

Marking a published row ``done`` (keep_published in the hot table) must add it to one index
only, ``tether_outbox_finished`` (appended at its right edge): an index on the random event id
of every kept row made each settle read and rewrite a page of an index that, at 10 million
kept rows, no longer fits in shared buffers (migration 0011). Dead letters keep an id index,
which the engine's replay and purge by id, and ``tether dlq show``, reach through their
``state`` condition.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import asyncpg

from tether.commands.backends import OutboxAdmin
from tether.outbox.table import OUTBOX
from tether.queue.ports import ItemFilter, ItemState
from tether.queue.postgres import PostgresQueue
from tether.queue.spec import where


async def test_a_done_row_is_in_the_finished_at_index_only(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            """SELECT c.relname AS name, pg_get_expr(i.indpred, i.indrelid) AS pred
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = 'tether_outbox'::regclass"""
        )
    finally:
        await conn.close()
    # An index without a predicate, or one whose predicate names 'done', holds done rows.
    holding_done = {r["name"] for r in rows if r["pred"] is None or "'done'" in r["pred"]}
    assert holding_done == {"tether_outbox_finished"}
    assert {r["name"] for r in rows} >= {"tether_outbox_dead_id", "tether_outbox_live"}


async def test_replay_and_purge_by_id_use_the_dead_id_index(pg_dsn: str) -> None:
    # The WHERE the engine builds for replay and for purge's default (dead letters by id).
    clause, _ = where(
        OUTBOX, ItemFilter(ids=[uuid.uuid4()]), "postgres", queue=None, states=(ItemState.DEAD,)
    )
    sql = f"SELECT seq FROM tether_outbox WHERE {clause.replace(':f_ids', '$1')}"
    conn = await asyncpg.connect(pg_dsn)
    try:
        # Enough dead letters that reading them all (other dead-only indexes) costs more than
        # two look-ups by id; a sequential scan is ruled out to ask which index serves.
        await conn.execute(
            """INSERT INTO tether_outbox (id, state, finished_at, topic, type, payload)
               SELECT gen_random_uuid(), 'dead', now(), 't', 'E', '{}'
               FROM generate_series(1, 2000)"""
        )
        await conn.execute("ANALYZE tether_outbox")
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                r[0] for r in await conn.fetch(f"EXPLAIN {sql}", [uuid.uuid4(), uuid.uuid4()])
            )
    finally:
        await conn.close()
    assert "tether_outbox_dead_id" in plan, plan
    assert "Index Cond: (id = ANY" in plan, plan


class _Explaining:
    """A pool stand-in for the engine: EXPLAINs each statement with its real arguments."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows = await self.conn.fetch(f"EXPLAIN {sql}", *args)
        self.plans.append("\n".join(r[0] for r in rows))
        return await self.conn.fetch(sql, *args)


async def test_dlq_show_reads_a_dead_letter_through_the_dead_id_index(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        # Enough published rows that the planner reads the table only when no index serves
        # (the plain look-up by id shows it), and a few dead letters among them.
        await conn.execute(
            """INSERT INTO tether_outbox (id, state, finished_at, topic, type, payload)
               SELECT gen_random_uuid(), CASE WHEN i % 100 = 0 THEN 'dead' ELSE 'done' END,
                      now(), 't', 'E', '{}'
               FROM generate_series(1, 20000) i"""
        )
        await conn.execute("ANALYZE tether_outbox")
        dead = await conn.fetchval("SELECT id FROM tether_outbox WHERE state = 'dead' LIMIT 1")
        explaining = _Explaining(conn)
        engine = PostgresQueue(cast(asyncpg.Pool, explaining), spec=OUTBOX, queue=None)
        admin = OutboxAdmin(engine, fetch=_unused)
        shown = await admin.get_dead(dead)  # what `tether dlq show` calls
        assert await engine.get(dead) == shown  # the same item as the look-up by id alone
    finally:
        await conn.close()
    show_plan, get_plan = explaining.plans
    assert "Index Scan using tether_outbox_dead_id" in show_plan, show_plan
    assert "Seq Scan" not in show_plan, show_plan
    assert "Seq Scan on tether_outbox" in get_plan, get_plan


async def _unused(*_: Any) -> Any:
    raise AssertionError("dlq show reads through the engine only")
