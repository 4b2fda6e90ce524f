"""The work-item engine's contract: every adapter (PostgreSQL, SQLite) passes this one suite.

Time is a pinned clock handed to the adapter, so leases and retry schedules are exact and no
test sleeps. The harness at the top is all that differs between adapters.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.support import pg, services
from tether.core import lifecycle
from tether.core.backoff import RetryPolicy
from tether.core.clock import FrozenClock
from tether.core.errors import ConfigError, LeaseLostError, NotFoundError, StoreError
from tether.outbox.table import OUTBOX
from tether.queue import Claimed, FilterError, ItemFilter, ItemState, NewItem, TableSpec
from tether.queue.engine import Engine
from tether.queue.postgres import PostgresQueue, create_pool
from tether.queue.sqlite import SqliteQueue, open_database
from tether.queue.worker import Worker
from tether.store.drivers import NotInTransactionError


@dataclass
class Harness:
    kind: str
    clock: FrozenClock
    # How many independent claimers race in the exclusivity test, and over how many items.
    claimers: int
    race_items: int
    dsn: str | None = None
    path: Path | None = None
    pool: asyncpg.Pool | None = None
    _closers: list[Any] = field(default_factory=list)

    async def queue(self, **options: Any) -> Engine:
        options.setdefault("clock", self.clock)
        if self.kind == "postgres":
            assert self.pool is not None
            return PostgresQueue(self.pool, **options)
        assert self.path is not None
        conn = await open_database(self.path)
        self._closers.append(conn)
        return SqliteQueue(conn, **options)

    @asynccontextmanager
    async def autocommit_connection(self) -> AsyncIterator[Any]:
        """A caller's connection with no transaction open."""
        if self.kind == "postgres":
            conn = await asyncpg.connect(self.dsn)
            try:
                yield conn
            finally:
                await conn.close()
        else:
            async with aiosqlite.connect(str(self.path), isolation_level=None) as sconn:
                yield sconn

    @asynccontextmanager
    async def transaction(self, *, commit: bool) -> AsyncIterator[Any]:
        """A caller's own connection with an open transaction, committed or rolled back."""
        if self.kind == "postgres":
            conn = await asyncpg.connect(self.dsn)
            try:
                tr = conn.transaction()
                await tr.start()
                yield conn
                await (tr.commit() if commit else tr.rollback())
            finally:
                await conn.close()
        else:
            async with aiosqlite.connect(str(self.path), isolation_level=None) as sconn:
                await sconn.execute("BEGIN")
                yield sconn
                await sconn.execute("COMMIT" if commit else "ROLLBACK")

    @asynccontextmanager
    async def sqlalchemy_session(self, *, commit: bool) -> AsyncIterator[AsyncSession]:
        """A SQLAlchemy AsyncSession in a transaction, as an application would hold one."""
        if self.kind == "postgres":
            assert self.dsn is not None
            url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        else:
            url = f"sqlite+aiosqlite:///{self.path}"
        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine) as session:
                await session.begin()
                yield session
                await (session.commit() if commit else session.rollback())
        finally:
            await engine.dispose()

    async def execute(self, sql_pg: str, sql_sqlite: str) -> None:
        if self.kind == "postgres":
            assert self.pool is not None
            await self.pool.execute(sql_pg)
        else:
            async with aiosqlite.connect(str(self.path), isolation_level=None) as conn:
                await conn.execute(sql_sqlite)

    async def scalar(self, sql: str) -> Any:
        """A single value from SQL both dialects accept."""
        if self.kind == "postgres":
            assert self.pool is not None
            return await self.pool.fetchval(sql)
        async with aiosqlite.connect(str(self.path)) as conn:
            async with conn.execute(sql) as cur:
                row = await cur.fetchone()
                return None if row is None else row[0]

    async def close(self) -> None:
        for conn in self._closers:
            await conn.close()
        if self.pool is not None:
            await self.pool.close()


async def postgres(dsn: str) -> Harness:
    pool = await create_pool(dsn, max_size=22)
    return Harness("postgres", FrozenClock(), claimers=20, race_items=2000, dsn=dsn, pool=pool)


async def sqlite(path: Path) -> Harness:
    conn = await open_database(path)  # creates and migrates the file
    await conn.close()
    return Harness("sqlite", FrozenClock(), claimers=4, race_items=400, path=path)


LEASE = timedelta(seconds=30)


@pytest.fixture(scope="module")
def shared_pg_dsn() -> Iterator[str]:
    """One fresh database for this module, emptied before each test: creating a database per
    test cost more than the tests themselves."""
    services.require("postgres")
    with pg.fresh_database() as dsn:
        yield dsn


@pytest.fixture(params=["postgres", "sqlite"])
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    if request.param == "postgres":
        harness = await postgres(request.getfixturevalue("shared_pg_dsn"))
        assert harness.pool is not None
        await harness.pool.execute("TRUNCATE tether_items, tether_outbox RESTART IDENTITY")
    else:
        harness = await sqlite(tmp_path / "queue.db")
    try:
        yield harness
    finally:
        await harness.close()


def items(n: int, **fields: Any) -> list[NewItem]:
    return [NewItem({"n": i}, **fields) for i in range(n)]


async def claim_all(q: Engine, limit: int = 100) -> list[Any]:
    return await q.claim(limit, lease=LEASE, worker="w1")


# -- enqueue -------------------------------------------------------------------------------


async def test_enqueue_in_callers_transaction_rolls_back_with_it(h: Harness) -> None:
    q = await h.queue()
    async with h.transaction(commit=False) as conn:
        await q.enqueue(items(3), tx=conn)
    assert await q.list() == []
    async with h.transaction(commit=True) as conn:
        ids = await q.enqueue(items(2), tx=conn)
    assert [i.id for i in await q.list()] == ids


async def test_enqueue_in_a_sqlalchemy_session_commits_with_it(h: Harness) -> None:
    q = await h.queue()
    async with h.sqlalchemy_session(commit=False) as session:
        await q.enqueue(items(2, partition_key="k"), tx=session)
    assert await q.list() == []
    async with h.sqlalchemy_session(commit=True) as session:
        ids = await q.enqueue(items(2, partition_key="k"), tx=session)
    stored = await q.list()
    assert [i.id for i in stored] == ids
    assert [(i.payload, i.partition_key, i.created_at) for i in stored] == [
        ({"n": 0}, "k", h.clock.now()),
        ({"n": 1}, "k", h.clock.now()),
    ]


async def test_enqueue_refuses_a_caller_connection_without_a_transaction(h: Harness) -> None:
    q = await h.queue()
    async with h.autocommit_connection() as conn:
        with pytest.raises(NotInTransactionError, match="no open transaction"):
            await q.enqueue(items(1), tx=conn)
    assert await q.list() == []


async def test_enqueue_keeps_payload_and_fields(h: Harness) -> None:
    q = await h.queue()
    run_at = h.clock.now() + timedelta(minutes=5)
    item_id = uuid.uuid4()
    [got] = await q.enqueue(
        [NewItem({"a": [1, "x"]}, partition_key="k", run_at=run_at, max_attempts=7, id=item_id)]
    )
    assert got == item_id
    item = await q.get(item_id)
    assert (item.payload, item.partition_key, item.max_attempts) == ({"a": [1, "x"]}, "k", 7)
    assert (item.state, item.attempts, item.available_at) == (ItemState.PENDING, 0, run_at)
    assert item.queue == "default" and item.created_at == h.clock.now()
    [raw] = await q.enqueue([NewItem(b'{"raw": true}')])
    assert (await q.get(raw)).payload == {"raw": True}


async def test_enqueue_same_id_twice_keeps_the_first(h: Harness) -> None:
    q = await h.queue()
    item_id = uuid.uuid4()
    await q.enqueue([NewItem({"v": 1}, id=item_id)])
    await q.enqueue([NewItem({"v": 2}, id=item_id)])
    assert [i.payload for i in await q.list()] == [{"v": 1}]


async def test_driver_errors_surface_as_store_errors(h: Harness) -> None:
    q = await h.queue()
    await q.close()  # the harness passed the pool/connection in: close() leaves it open
    assert (await q.stats()).pending == 0
    # A closed pool or connection: every call now fails in the driver.
    if isinstance(q, PostgresQueue):
        await q.pool.close()
        h.pool = None
    else:
        assert isinstance(q, SqliteQueue)
        await q.conn.close()
    with pytest.raises(StoreError, match="failed during"):
        await q.stats()
    with pytest.raises(StoreError):
        await q.enqueue(items(1))


async def test_get_unknown_id_raises_not_found(h: Harness) -> None:
    q = await h.queue()
    with pytest.raises(NotFoundError):
        await q.get(uuid.uuid4())


# -- claim ---------------------------------------------------------------------------------


async def test_claim_is_fifo_counts_the_attempt_and_sets_the_lease(h: Harness) -> None:
    q = await h.queue()
    ids = await q.enqueue(items(5))
    first = await q.claim(3, lease=LEASE, worker="w1")
    second = await q.claim(3, lease=LEASE, worker="w2")
    assert [c.id for c in first + second] == ids
    assert await q.claim(3, lease=LEASE, worker="w3") == []
    stored = await q.get(ids[0])
    assert (stored.state, stored.attempts, stored.worker) == (ItemState.CLAIMED, 1, "w1")
    assert stored.available_at == first[0].lease_expires_at == h.clock.now() + LEASE
    assert stored.lease_token == first[0].lease_token


async def test_claim_skips_items_not_yet_due(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue([NewItem("later", run_at=h.clock.now() + timedelta(seconds=10))])
    assert await claim_all(q) == []
    h.clock.advance(10)
    assert [c.item.payload for c in await claim_all(q)] == ["later"]


async def test_queues_are_separate(h: Harness) -> None:
    a, b = await h.queue(queue="a"), await h.queue(queue="b")
    await a.enqueue(items(2))
    assert await claim_all(b) == []
    assert len(await claim_all(a)) == 2
    assert (await b.stats()).pending == 0


async def test_an_adapter_without_a_queue_administers_all_queues(h: Harness) -> None:
    a, b = await h.queue(queue="a"), await h.queue(queue="b")
    await a.enqueue(items(2))
    await b.enqueue(items(3))
    everything = await h.queue(queue=None)
    assert (await everything.stats()).pending == 5
    assert await everything.count(ItemFilter(queue="b")) == 3
    with pytest.raises(ConfigError, match="needs a queue"):
        await everything.claim(1, lease=LEASE, worker="w")
    with pytest.raises(ConfigError, match="needs a queue"):
        await everything.enqueue(items(1))


async def test_concurrent_claimers_never_share_an_item(h: Harness) -> None:
    producer = await h.queue()
    await producer.enqueue(items(h.race_items))
    claimers = [await h.queue() for _ in range(h.claimers)]

    async def drain(q: Engine, name: str) -> list[uuid.UUID]:
        got: list[uuid.UUID] = []
        while batch := await q.claim(17, lease=LEASE, worker=name):
            got += [c.id for c in batch]
            await asyncio.sleep(0)  # let the other claimers interleave
        return got

    results = await asyncio.gather(*(drain(q, f"w{i}") for i, q in enumerate(claimers)))
    flat = [i for r in results for i in r]
    assert len(flat) == len(set(flat)) == h.race_items
    if h.kind == "postgres":  # SQLite's busy handler may let one connection win every round
        assert sum(1 for r in results if r) > 1  # the race really was a race
    stats = await producer.stats()
    assert (stats.claimed, stats.pending) == (h.race_items, 0)


@pytest.mark.parametrize("h", ["postgres"], indirect=True)  # SQLite has no plan cache to trap
async def test_postgres_pool_forces_custom_plans(h: Harness) -> None:
    assert h.pool is not None
    assert await h.pool.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


async def test_claim_after_polling_an_empty_table_takes_exactly_the_limit(h: Harness) -> None:
    # The cached-plan trap (docs/architecture.md): poll an empty table often, then load it.
    q = await h.queue()
    for _ in range(12):
        assert await claim_all(q) == []
    await q.enqueue(items(1500))
    batch = await q.claim(500, lease=LEASE, worker="w")
    assert len(batch) == len({c.id for c in batch}) == 500
    assert [c.item.payload["n"] for c in batch] == list(range(500))


# -- leases --------------------------------------------------------------------------------


async def test_expired_lease_is_reclaimed_by_the_next_claim(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [old] = await claim_all(q)
    h.clock.advance(LEASE - timedelta(seconds=1))
    assert await claim_all(q) == []
    h.clock.advance(timedelta(seconds=1))
    [new] = await q.claim(1, lease=LEASE, worker="w2")
    assert new.id == old.id and new.lease_token != old.lease_token
    assert (new.item.attempts, new.item.worker) == (2, "w2")


async def test_zombie_cannot_complete_fail_heartbeat_or_bury(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [zombie] = await claim_all(q)
    h.clock.advance(LEASE)
    [current] = await claim_all(q)
    for op in (
        q.complete(zombie),
        q.fail(zombie, "late"),
        q.heartbeat(zombie, LEASE),
        q.dead_letter(zombie, "late"),
    ):
        with pytest.raises(LeaseLostError):
            await op
    await q.complete(current)
    with pytest.raises(LeaseLostError):
        await q.complete(current)  # twice is refused too
    assert await q.list() == []


async def test_expired_lease_not_yet_reclaimed_can_still_complete(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [c] = await claim_all(q)
    h.clock.advance(LEASE * 2)
    await q.complete(c)  # nobody took it over: the token is still current
    assert await q.list() == []


async def test_heartbeat_extends_the_lease(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [c] = await claim_all(q)
    h.clock.advance(LEASE - timedelta(seconds=1))
    renewed = await q.heartbeat(c, LEASE)
    assert renewed.lease_expires_at == h.clock.now() + LEASE
    assert (await q.get(c.id)).available_at == renewed.lease_expires_at
    h.clock.advance(LEASE - timedelta(seconds=1))
    assert await claim_all(q) == []  # past the first lease, within the renewed one
    await q.complete(renewed)


# -- retries and dead letters --------------------------------------------------------------


async def test_fail_schedules_a_retry_inside_the_jittered_window(h: Harness) -> None:
    policy = RetryPolicy(max_attempts=10, base=timedelta(seconds=10), cap=timedelta(seconds=60))
    q = await h.queue(policy=policy, rng=random.Random(7))
    await q.enqueue(items(30))
    for attempt in (1, 2, 3, 4):
        now = h.clock.now()
        batch = await claim_all(q)
        assert len(batch) == 30 and {c.item.attempts for c in batch} == {attempt}
        for c in batch:
            assert await q.fail(c, f"boom {attempt}") is ItemState.PENDING
        bound = min(10 * 2 ** (attempt - 1), 60)
        waits = [(i.available_at - now).total_seconds() for i in await q.list()]
        assert all(0 <= w <= bound for w in waits)
        assert len(set(waits)) > 1  # full jitter spreads them
        h.clock.advance(bound)
    assert (await q.stats()).retrying == 30


async def test_retry_without_jitter_waits_exactly_the_bound(h: Harness) -> None:
    policy = RetryPolicy(max_attempts=5, base=timedelta(seconds=3), jitter=False)
    q = await h.queue(policy=policy)
    await q.enqueue(items(1))
    [c] = await claim_all(q)
    await q.fail(c, "x")
    h.clock.advance(3)
    [c] = await claim_all(q)
    await q.fail(c, "y")
    item = await q.get(c.id)
    assert item.available_at == h.clock.now() + timedelta(seconds=6)
    assert (item.state, item.last_error, item.lease_token) == (ItemState.PENDING, "y", None)


async def test_exhausted_attempts_dead_letter_with_full_error_history(h: Harness) -> None:
    policy = RetryPolicy(max_attempts=3, base=timedelta(seconds=1), jitter=False)
    q = await h.queue(policy=policy)
    [item_id] = await q.enqueue(items(1))
    states = []
    for n in (1, 2, 3):
        [c] = await claim_all(q)
        states.append(await q.fail(c, f"error {n}"))
        h.clock.advance(60)
    assert states == [ItemState.PENDING, ItemState.PENDING, ItemState.DEAD]
    dead = await q.get(item_id)
    assert (dead.state, dead.attempts, dead.last_error) == (ItemState.DEAD, 3, "error 3")
    assert [(e.attempt, e.error) for e in dead.errors] == [
        (1, "error 1"),
        (2, "error 2"),
        (3, "error 3"),
    ]
    assert dead.finished_at is not None and dead.lease_token is None
    assert await claim_all(q) == []


async def test_item_max_attempts_overrides_the_policy(h: Harness) -> None:
    q = await h.queue(policy=RetryPolicy(max_attempts=10))
    await q.enqueue([NewItem("once", max_attempts=1)])
    [c] = await claim_all(q)
    assert await q.fail(c, "no") is ItemState.DEAD


async def test_a_crash_looping_item_still_dead_letters(h: Harness) -> None:
    # Its worker dies every time: nobody calls fail(), the lease just expires.
    q = await h.queue(policy=RetryPolicy(max_attempts=2))
    [item_id] = await q.enqueue(items(1))
    for _ in range(2):
        assert len(await claim_all(q)) == 1
        h.clock.advance(LEASE)
    assert await claim_all(q) == []
    dead = await q.get(item_id)
    assert (dead.state, dead.attempts) == (ItemState.DEAD, 2)
    assert "lease expired" in (dead.last_error or "")
    assert [e.attempt for e in dead.errors] == [2]


async def test_dead_letter_at_once(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [c] = await claim_all(q)
    await q.dead_letter(c, "poison message")
    dead = await q.get(c.id)
    assert (dead.state, dead.last_error, dead.attempts) == (ItemState.DEAD, "poison message", 1)


async def test_long_errors_are_clipped_to_the_one_lifecycle_limit(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [c] = await claim_all(q)
    await q.dead_letter(c, "x" * 100_000)
    dead = await q.get(c.id)
    assert len(dead.last_error or "") == lifecycle.MAX_ERROR_CHARS
    assert dead.errors[0].error == dead.last_error


# -- defer: postpone without spending an attempt ---------------------------------------------


async def test_defer_gives_back_the_attempt_and_releases_the_lease(h: Harness) -> None:
    q = await h.queue(policy=RetryPolicy(max_attempts=1))
    [item_id] = await q.enqueue(items(1))
    for _ in range(3):  # with one attempt allowed, only deferrals keep it alive
        [c] = await claim_all(q)
        assert c.item.attempts == 1
        await q.defer(c, delay=timedelta(seconds=30), reason="sink paused")
        item = await q.get(item_id)
        assert (item.state, item.attempts, item.lease_token) == (ItemState.PENDING, 0, None)
        assert item.available_at == h.clock.now() + timedelta(seconds=30)
        assert (item.last_error, item.errors) == ("sink paused", ())
        assert await claim_all(q) == []
        h.clock.advance(30)
    [c] = await claim_all(q)
    assert await q.fail(c, "real failure") is ItemState.DEAD
    assert [(e.attempt, e.error) for e in (await q.get(item_id)).errors] == [(1, "real failure")]


async def test_defer_until_a_time_keeps_the_key_behind_it(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue([NewItem("A1", partition_key="A"), NewItem("A2", partition_key="A")])
    [a1] = await claim_all(q)
    until = h.clock.now() + timedelta(minutes=5)
    await q.defer(a1, until=until)
    item = await q.get(a1.id)
    assert (item.available_at, item.last_error) == (until, None)  # no reason: kept as it was
    assert await claim_all(q) == []  # the deferred head still holds its key
    h.clock.advance(timedelta(minutes=5))
    assert [c.item.payload for c in await claim_all(q)] == ["A1"]


async def test_defer_checks_the_lease_and_its_arguments(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(1))
    [zombie] = await claim_all(q)
    h.clock.advance(LEASE)
    [current] = await claim_all(q)
    with pytest.raises(LeaseLostError):
        await q.defer(zombie, delay=timedelta(seconds=1))
    naive = h.clock.now().replace(tzinfo=None)
    for kwargs, message in [
        ({}, "got neither"),
        ({"delay": timedelta(1), "until": h.clock.now()}, "not both"),
        ({"delay": timedelta(seconds=-1)}, "must not be negative"),
        ({"until": naive}, "timezone-aware"),
    ]:
        with pytest.raises(ConfigError, match=message):
            await q.defer(current, **kwargs)
    await q.defer(current, until=h.clock.now() - timedelta(hours=1))  # the past: due now
    assert len(await claim_all(q)) == 1


# -- replay, purge, sweep ------------------------------------------------------------------


async def bury(q: Engine, error: str, n: int = 1) -> list[uuid.UUID]:
    buried = []
    for c in await q.claim(n, lease=LEASE, worker="w"):
        await q.dead_letter(c, error)
        buried.append(c.id)
    return buried


async def test_replay_resets_attempts_and_keeps_history(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(2))
    [a, b] = await bury(q, "broken", 2)
    h.clock.advance(100)
    assert await q.replay(ItemFilter(ids=[a])) == 1
    item = await q.get(a)
    assert (item.state, item.attempts, item.finished_at) == (ItemState.PENDING, 0, None)
    assert item.available_at == h.clock.now()
    assert [e.error for e in item.errors] == ["broken"]
    assert (await q.get(b)).state is ItemState.DEAD
    [c] = await claim_all(q)
    assert (c.id, c.item.attempts) == (a, 1)


async def dead_set(h: Harness, q: Engine) -> dict[str, uuid.UUID]:
    """Six dead items with distinct keys, errors and creation times."""
    named: dict[str, uuid.UUID] = {}
    for name, key, error in [
        ("a1", "a", "timeout talking to x"),
        ("a2", "a", "HTTP 500"),
        ("b1", "b", "timeout again"),
        ("b2", "b", "100% broken_"),
        ("n1", None, "HTTP 404"),
        ("n2", None, "HTTP 500"),
    ]:
        [named[name]] = await q.enqueue([NewItem(name, partition_key=key)])
        [c] = await claim_all(q)
        await q.dead_letter(c, error)
        h.clock.advance(10)
    return named


FILTERS: list[tuple[str, Any, set[str]]] = [
    ("everything", lambda n, t0: ItemFilter(), {"a1", "a2", "b1", "b2", "n1", "n2"}),
    ("ids", lambda n, t0: ItemFilter(ids=[n["a1"], n["n2"]]), {"a1", "n2"}),
    ("partition key", lambda n, t0: ItemFilter(partition_key="b"), {"b1", "b2"}),
    ("error substring", lambda n, t0: ItemFilter(error="timeout"), {"a1", "b1"}),
    ("error with wildcards", lambda n, t0: ItemFilter(error="% broken_"), {"b2"}),
    (
        "created before",
        lambda n, t0: ItemFilter(created_before=t0 + timedelta(seconds=20)),
        {"a1", "a2"},
    ),
    (
        "created after",
        lambda n, t0: ItemFilter(created_after=t0 + timedelta(seconds=40)),
        {"n1", "n2"},
    ),
    ("combined", lambda n, t0: ItemFilter(error="HTTP 500", partition_key="a"), {"a2"}),
    ("state", lambda n, t0: ItemFilter(state=ItemState.DEAD, error="404"), {"n1"}),
    ("no match", lambda n, t0: ItemFilter(partition_key="' OR '1'='1"), set()),
]


async def test_replay_and_purge_honour_each_filter(h: Harness) -> None:
    # One queue per case: a fresh database per case would cost more than the cases do.
    for n, (label, make_filter, expected) in enumerate(FILTERS):
        q = await h.queue(queue=f"filters{n}")
        t0 = h.clock.now()
        named = await dead_set(h, q)
        by_id = {v: k for k, v in named.items()}
        f = make_filter(named, t0)
        assert {by_id[i.id] for i in await q.list(f)} == expected, label
        assert await q.count(f) == len(expected), label
        if f.state is None:
            assert await q.count(f, states=(ItemState.PENDING,)) == 0, label
        assert await q.replay(f) == len(expected), label
        pending = {by_id[i.id] for i in await q.list(ItemFilter(state=ItemState.PENDING))}
        assert pending == expected, label
        # Bury them again (one key head at a time) with their first error, then purge.
        while batch := await claim_all(q):
            for c in batch:
                await q.dead_letter(c, (await q.get(c.id)).errors[0].error)
        assert await q.purge(f) == len(expected), label
        assert {by_id[i.id] for i in await q.list()} == set(named) - expected, label


async def test_purge_defaults_to_dead_items_and_takes_an_explicit_state(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(3))
    await bury(q, "x")
    assert await q.purge() == 1
    assert len(await q.list()) == 2
    assert await q.purge(ItemFilter(state=ItemState.PENDING)) == 2
    assert await q.list() == []


async def test_replay_refuses_a_non_dead_state(h: Harness) -> None:
    q = await h.queue()
    with pytest.raises(FilterError, match="dead"):
        await q.replay(ItemFilter(state=ItemState.PENDING))


async def test_replay_and_purge_report_progress_in_batches(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(30))
    await bury(q, "x", 30)
    seen: list[int] = []
    assert await q.replay(progress=seen.append) == 30
    assert sum(seen) == 30


async def test_list_pages_in_fifo_order(h: Harness) -> None:
    q = await h.queue()
    ids = await q.enqueue(items(7))
    page1 = await q.list(limit=3)
    page2 = await q.list(limit=3, offset=3)
    assert [i.id for i in page1 + page2] == ids[:6]


async def test_completed_items_are_deleted_by_default(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(2))
    for c in await claim_all(q):
        await q.complete(c)
    assert await q.list() == []


async def test_complete_many_reports_the_lost_leases(h: Harness) -> None:
    q = await h.queue(keep_done=True)
    await q.enqueue(items(3))
    batch = await claim_all(q)
    await q.complete(batch[1])
    assert await q.complete_many(batch) == [batch[1]]
    assert (await q.stats()).done == 3


async def test_sweep_removes_finished_items_past_retention(h: Harness) -> None:
    q = await h.queue(keep_done=True)
    await q.enqueue(items(4))
    [c1, c2, c3, c4] = await claim_all(q)
    await q.complete(c1)
    await q.dead_letter(c2, "x")
    h.clock.advance(timedelta(hours=2))
    await q.complete(c3)
    assert (await q.get(c1.id)).state is ItemState.DONE
    assert await q.sweep(timedelta(hours=1)) == 2  # c1 (done) and c2 (dead) are older
    assert {i.id for i in await q.list()} == {c3.id, c4.id}
    assert await q.sweep(timedelta(hours=1), states=(ItemState.DONE,)) == 0
    h.clock.advance(timedelta(hours=2))
    assert await q.sweep(timedelta(hours=1)) == 1  # c3; c4 is still claimed
    with pytest.raises(ConfigError):
        await q.sweep(timedelta(0), states=(ItemState.PENDING,))


async def test_sweep_can_archive_instead_of_delete(h: Harness) -> None:
    await h.execute(
        "CREATE TABLE tether_items_archive (LIKE tether_items)",
        "CREATE TABLE tether_items_archive AS SELECT * FROM tether_items WHERE 0",
    )
    try:
        q = await h.queue(keep_done=True)
        await q.enqueue(items(3))
        [c1, c2, c3] = await claim_all(q)
        await q.complete(c1)
        await q.dead_letter(c2, "kept for the record")
        h.clock.advance(timedelta(days=8))
        assert await q.sweep(timedelta(days=7), archive_to="tether_items_archive") == 2
        assert [i.id for i in await q.list()] == [c3.id]
        archived = await h.queue(spec=TableSpec("tether_items_archive", has_queue_column=True))
        moved = {i.id: i for i in await archived.list()}
        assert moved.keys() == {c1.id, c2.id}
        assert moved[c2.id].errors[0].error == "kept for the record"
        for bad in ("tether_items", "x; DROP TABLE tether_items"):
            with pytest.raises(ConfigError):
                await q.sweep(timedelta(0), archive_to=bad)
    finally:
        await h.execute("DROP TABLE tether_items_archive", "DROP TABLE tether_items_archive")


# -- stats ---------------------------------------------------------------------------------


async def test_stats_count_each_state_and_the_oldest_pending_age(h: Harness) -> None:
    q = await h.queue(keep_done=True)
    assert (await q.stats()).oldest_pending_age is None
    await q.enqueue(items(5))
    h.clock.advance(5)
    await q.enqueue([NewItem("later", run_at=h.clock.now() + timedelta(hours=1))])
    a, b, _c = await q.claim(3, lease=LEASE, worker="w")
    await q.complete(a)
    await q.dead_letter(b, "x")
    h.clock.advance(10)
    stats = await q.stats()
    assert (stats.pending, stats.claimed, stats.dead, stats.done) == (3, 1, 1, 1)
    assert stats.due == 2  # two pending are due, "later" is not, c is still leased
    assert stats.oldest_pending_age == timedelta(seconds=15)
    assert stats.retrying == 0
    h.clock.advance(LEASE)
    assert (await q.stats()).due == 3  # c's lease expired: claimable again


# -- per-key ordering ----------------------------------------------------------------------


async def test_only_the_head_of_each_partition_key_is_claimable(h: Harness) -> None:
    q = await h.queue(policy=RetryPolicy(base=timedelta(seconds=5), jitter=False))
    spec = [("A1", "A"), ("A2", "A"), ("B1", "B"), ("N1", None), ("A3", "A"), ("B2", "B")]
    await q.enqueue([NewItem(name, partition_key=key) for name, key in spec])

    async def names() -> list[str]:
        return [c.item.payload for c in await claim_all(q)]

    first = await q.claim(10, lease=LEASE, worker="w")
    assert [c.item.payload for c in first] == ["A1", "B1", "N1"]
    a1, b1, _ = first
    await q.complete(b1)
    await q.fail(a1, "A1 failed")  # a failing head holds back its key only
    assert await names() == ["B2"]
    h.clock.advance(5)
    [a1] = await claim_all(q)
    assert a1.item.payload == "A1"
    await q.complete(a1)
    [a2] = await claim_all(q)
    assert a2.item.payload == "A2"
    await q.dead_letter(a2, "poison")  # a dead head no longer blocks its key
    assert await names() == ["A3"]


async def test_concurrent_claimers_keep_each_key_in_order(h: Harness) -> None:
    keys, per_key = 10, 20
    producer = await h.queue()
    await producer.enqueue(
        [
            NewItem({"k": k, "i": i}, partition_key=f"k{k}")
            for i in range(per_key)
            for k in range(keys)
        ]
    )
    # More claimers than keys would mostly find nothing: only one item per key is claimable.
    claimers = [await h.queue() for _ in range(min(h.claimers, 6))]
    in_flight: set[str] = set()
    finished: dict[str, list[int]] = {f"k{k}": [] for k in range(keys)}
    total = keys * per_key

    async def work(q: Engine) -> None:
        while sum(map(len, finished.values())) < total:
            batch = await q.claim(5, lease=LEASE, worker="w")
            for c in batch:
                key = str(c.item.partition_key)
                assert key not in in_flight, f"two items of {key} in flight at once"
                in_flight.add(key)
            for c in batch:
                await asyncio.sleep(0)  # let other claimers try to take this key meanwhile
                in_flight.discard(str(c.item.partition_key))
                finished[str(c.item.partition_key)].append(c.item.payload["i"])
                await q.complete(c)
            if not batch:
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(work(q) for q in claimers)), 60)
    assert all(order == list(range(per_key)) for order in finished.values())


async def test_key_ordering_can_be_switched_off(h: Harness) -> None:
    q = await h.queue(key_ordering=False)
    await q.enqueue(items(3, partition_key="same"))
    assert len(await claim_all(q)) == 3


# -- filters are data, never SQL -----------------------------------------------------------


BAD_FILTERS = [
    ItemFilter(extra={"type; DROP TABLE tether_items; --": "x"}),  # injected column
    ItemFilter(extra={"payload": "x"}),  # a core column is not an extra one
    ItemFilter(extra={"1=1 OR type": "x"}),  # an expression
    ItemFilter(extra={"type": 1}),  # type: ignore[dict-item]  # not a string
]


async def test_filter_injection_is_rejected_with_a_clear_error(h: Harness) -> None:
    q = await h.queue()
    for bad in BAD_FILTERS:
        with pytest.raises(FilterError, match=r"cannot filter|must be a string"):
            await q.list(bad)
        with pytest.raises(FilterError):
            await q.purge(bad)
    assert await h.scalar("SELECT count(*) FROM tether_items") == 0  # table still there


async def test_hostile_values_are_only_data(h: Harness) -> None:
    q = await h.queue()
    await q.enqueue(items(2))
    await bury(q, "x", 2)
    hostile = "x' OR '1'='1'; DELETE FROM tether_items; --"
    assert await q.purge(ItemFilter(error=hostile, partition_key=hostile)) == 0
    assert await q.purge(ItemFilter(queue=hostile)) == 0
    assert len(await q.list()) == 2


async def test_unknown_state_and_misused_queue_are_refused(h: Harness) -> None:
    q = await h.queue()
    with pytest.raises(FilterError, match="unknown item state 'exploded'"):
        await q.list(ItemFilter(state="exploded"))  # type: ignore[arg-type]
    outbox = await h.queue(spec=OUTBOX, queue=None)
    with pytest.raises(FilterError, match="no queue column"):
        await outbox.list(ItemFilter(queue="jobs"))


# -- the outbox table through the same admin operations ------------------------------------

OUTBOX_ROW_PG = """INSERT INTO tether_outbox (id, partition_key, topic, type, tenant_id, payload,
    state, attempts, last_error, errors, finished_at, created_at)
    VALUES ('{id}', 'order:1', 'orders', '{type}', 't1', '{{"x": 1}}', 'dead', 3, 'sink down',
    '[{{"at": "2026-01-01T00:00:00+00:00", "attempt": 3, "error": "sink down"}}]',
    '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"""
OUTBOX_ROW_SQLITE = (
    OUTBOX_ROW_PG.replace("'{{", "'{")
    .replace("}}'", "}'")
    .replace("[{{", "[{")
    .replace("}}]", "}]")
)


async def test_outbox_rows_are_administered_but_never_leased(h: Harness) -> None:
    await h.execute(
        OUTBOX_ROW_PG.format(id=uuid.uuid4(), type="OrderPlaced").replace("'dead'", "'pending'"),
        OUTBOX_ROW_SQLITE.replace("{id}", str(uuid.uuid4()))
        .replace("{type}", "OrderPlaced")
        .replace("'dead'", "'pending'"),
    )
    outbox = await h.queue(spec=OUTBOX, queue=None)
    with pytest.raises(ConfigError, match="never leased"):
        await outbox.claim(10, lease=LEASE, worker="w")
    with pytest.raises(ConfigError, match="cannot lease rows of tether_outbox"):
        Worker(outbox, _never_called)
    with pytest.raises(FilterError, match="never claimed"):
        await outbox.list(ItemFilter(state=ItemState.CLAIMED))
    [row] = await outbox.list()
    assert (row.state, row.lease_token, row.worker) == (ItemState.PENDING, None, None)
    assert (await outbox.stats()).pending == 1


async def _never_called(claimed: Claimed) -> None:
    raise AssertionError("a worker on the outbox must not run")


async def test_outbox_dead_letters_are_listed_replayed_and_purged(h: Harness) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for i, event_id in enumerate(ids):
        kind = "OrderPlaced" if i < 2 else "OrderShipped"
        await h.execute(
            OUTBOX_ROW_PG.format(id=event_id, type=kind),
            OUTBOX_ROW_SQLITE.replace("{id}", str(event_id)).replace("{type}", kind),
        )
    outbox = await h.queue(spec=OUTBOX, queue=None)
    placed = ItemFilter(extra={"type": "OrderPlaced", "tenant_id": "t1"})
    listed = await outbox.list(placed)
    assert [i.id for i in listed] == ids[:2]
    assert listed[0].extra["topic"] == "orders" and listed[0].payload == {"x": 1}
    assert listed[0].errors[0].error == "sink down" and listed[0].queue is None
    assert (await outbox.stats()).dead == 3
    assert await outbox.replay(placed) == 2
    assert (await outbox.get(ids[0])).state is ItemState.PENDING
    assert await outbox.purge(ItemFilter(extra={"topic": "orders"})) == 1
    assert (await outbox.stats()).pending == 2


async def test_get_dead_finds_dead_items_only(h: Harness) -> None:
    # On the outbox (ids indexed for dead rows only) and on a queue table alike.
    dead_id, pending_id = uuid.uuid4(), uuid.uuid4()
    for event_id, state in ((dead_id, "'dead'"), (pending_id, "'pending'")):
        await h.execute(
            OUTBOX_ROW_PG.format(id=event_id, type="OrderPlaced").replace("'dead'", state),
            OUTBOX_ROW_SQLITE.replace("{id}", str(event_id))
            .replace("{type}", "OrderPlaced")
            .replace("'dead'", state),
        )
    outbox = await h.queue(spec=OUTBOX, queue=None)
    assert await outbox.get_dead(dead_id) == await outbox.get(dead_id)
    for absent in (pending_id, uuid.uuid4()):
        with pytest.raises(NotFoundError, match="no dead item with id"):
            await outbox.get_dead(absent)
    q = await h.queue()
    [item_id] = await q.enqueue(items(1))
    with pytest.raises(NotFoundError):
        await q.get_dead(item_id)
    [c] = await claim_all(q)
    await q.dead_letter(c, "poison message")
    assert await q.get_dead(item_id) == await q.get(item_id)
