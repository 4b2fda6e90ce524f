"""Everything the dashboard reads from PostgreSQL, in one module: a schema change of another
part touches this file only.

Rules every query here keeps (``tests/integration/dashboard/test_plans.py`` checks the plans):
pages are keyset-paginated (never ``OFFSET``), each statement reads through an index, and the
overview counts from partial indexes capped at :data:`EXACT_UP_TO` rows, or from the planner's
estimate beyond that, never with a scan of a whole table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from tether.dashboard.kinds import DeadFilter, Kind
from tether.queue import Item, ItemState
from tether.queue.codec import iso_to_dt, item_from_row
from tether.queue.spec import where
from tether.store.sqlfile import Query

EXACT_UP_TO = 10_000
_CAP = EXACT_UP_TO + 1


# --- dead letters ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of dead letters resumes: the last row's (finished_at, seq), newest first."""

    finished_at: datetime
    seq: int

    def encode(self) -> str:
        return f"{self.finished_at.isoformat()}_{self.seq}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """None for no cursor; ValueError for one the dashboard did not write."""
        if not text:
            return None
        at, _, seq = text.rpartition("_")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not seq.isdigit() or len(seq) > 19:
            raise ValueError("not a page cursor")
        return cls(when, int(seq))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of dead letters. ``scanned``: how many dead letters were read to fill it;
    with a filter, a page may be short although older matches exist (``next`` is then the
    oldest row read, and the next page reads on from there)."""

    items: list[Item]
    next: Cursor | None
    scanned: int = 0


SCAN_WINDOW = 5000
"""Dead letters read per page at most. Filters (type, tenant, error text...) are applied to a
window of the dead rows read newest first through the (finished_at, seq) index of dead rows,
so a page costs the same on a million dead letters as on a thousand, whatever the filter: the
planner cannot swap the index walk for a scan of the table when it expects few matches."""


def _item(row: Any, kind: Kind) -> Item:
    def to_uuid(v: Any) -> uuid.UUID:
        return v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))

    return item_from_row(row, kind.spec, to_dt=iso_to_dt, to_uuid=to_uuid)


def dead_page_query(
    f: DeadFilter, cursor: Cursor | None, limit: int, window: int = SCAN_WINDOW
) -> tuple[Query, list[Any]]:
    """The statement of one page (exposed for the plan tests): a window of dead rows newest
    first, then the engine's own filter clause (:func:`tether.queue.spec.where`, as replay
    and purge use it) on that window. Returns the matches (edge 0, up to limit + 1) and the
    oldest row read with the number read (edge 1)."""
    clause, params = where(
        f.kind.spec, f.item_filter(), "postgres", queue=None, states=(ItemState.DEAD,)
    )
    keyset = ""
    if cursor is not None:
        keyset = "AND (finished_at, seq) < (:c_at, :c_seq)"
        params |= {"c_at": cursor.finished_at, "c_seq": cursor.seq}
    spec = f.kind.spec
    sql = f"""
WITH w AS MATERIALIZED (
    SELECT {spec.columns} FROM {spec.name} WHERE state = 'dead' {keyset}
    ORDER BY finished_at DESC, seq DESC LIMIT :window
)
(SELECT w.*, 0 AS edge, 0 AS scanned FROM w WHERE {clause}
 ORDER BY finished_at DESC, seq DESC LIMIT :limit)
UNION ALL
(SELECT w.*, 1 AS edge, (SELECT count(*) FROM w) AS scanned FROM w
 ORDER BY finished_at, seq LIMIT 1)"""
    query = Query("dead_page", sql)
    return query, query.args({**params, "limit": limit + 1, "window": window})


async def dead_page(
    pool: asyncpg.Pool, f: DeadFilter, cursor: Cursor | None, limit: int,
    window: int = SCAN_WINDOW,
) -> Page:  # fmt: skip
    query, args = dead_page_query(f, cursor, limit, window)
    rows = await pool.fetch(query.numbered, *args)
    matches = [r for r in rows if r["edge"] == 0]
    edge = next((r for r in rows if r["edge"] == 1), None)
    scanned = int(edge["scanned"]) if edge is not None else 0
    items = [_item(r, f.kind) for r in matches[:limit]]
    nxt = None
    if len(matches) > limit:
        last = items[-1]
        nxt = Cursor(last.finished_at, last.seq) if last.finished_at is not None else None
    elif edge is not None and scanned >= window and edge["finished_at"] is not None:
        nxt = Cursor(edge["finished_at"], int(edge["seq"]))
    return Page(items, nxt, scanned)


async def item(pool: asyncpg.Pool, kind: Kind, id: uuid.UUID) -> Item | None:
    """A dead letter by id, else (jobs, deliveries: their id is unique-indexed) the row in
    whatever state it is now. An outbox event that is no longer dead is not looked up: only
    dead outbox rows are indexed by id (0011), and a published one may be gone already."""
    spec = kind.spec
    row = await pool.fetchrow(
        f"SELECT {spec.columns} FROM {spec.name} WHERE id = $1 AND state = 'dead'", id
    )
    if row is None and spec.name != "tether_outbox":
        row = await pool.fetchrow(f"SELECT {spec.columns} FROM {spec.name} WHERE id = $1", id)
    return None if row is None else _item(row, kind)


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    delivery_id: uuid.UUID
    attempt: int
    at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float | None
    response: str | None
    error: str | None


def _attempt(r: Any) -> Attempt:
    return Attempt(
        r["id"], r["delivery_id"], r["attempt"], r["at"], r["outcome"],
        r["status_code"], r["latency_ms"], r["response"], r["error"],
    )  # fmt: skip


_ATTEMPT = "id, delivery_id, attempt, at, outcome, status_code, latency_ms, response, error"


async def delivery_attempts(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> list[Attempt]:
    """A delivery's attempt log, newest first (at most 100: the schedule has fewer steps)."""
    rows = await pool.fetch(
        f"SELECT {_ATTEMPT} FROM tether_webhook_attempts WHERE delivery_id = $1 "
        "ORDER BY id DESC LIMIT 100",
        delivery_id,
    )
    return [_attempt(r) for r in rows]


async def endpoint_attempts(
    pool: asyncpg.Pool, endpoint_id: uuid.UUID, before: datetime | None, limit: int
) -> tuple[list[Attempt], datetime | None]:
    """An endpoint's delivery log, newest first, by keyset on ``at`` (index endpoint, at).
    Returns the page and the cursor of the next one."""
    rows = await pool.fetch(
        f"SELECT {_ATTEMPT} FROM tether_webhook_attempts WHERE endpoint_id = $1 "
        "AND ($2::timestamptz IS NULL OR at < $2) ORDER BY at DESC LIMIT $3",
        endpoint_id,
        before,
        limit + 1,
    )
    page = [_attempt(r) for r in rows[:limit]]
    return page, (page[-1].at if len(rows) > limit and page else None)


# --- counts ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Count:
    """A row count: exact up to EXACT_UP_TO, else the planner's estimate (``exact`` False)."""

    value: int
    exact: bool

    def __str__(self) -> str:
        if self.exact:
            return f"{self.value:,}"
        return "≈" + _short(self.value)


def _short(n: int) -> str:
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


async def estimate(conn: Any, sql: str, *args: Any) -> int:
    """The planner's row estimate for ``sql`` (from table statistics: no rows are read)."""
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    data = orjson.loads(plan) if isinstance(plan, str | bytes) else plan
    return int(data[0]["Plan"]["Plan Rows"])


async def capped_count(conn: Any, table: str, state: str) -> Count:
    """Exact when at most EXACT_UP_TO rows are in ``state`` (read in the order of the
    partial index of that state, so the read is that index's, never the table's), else the
    planner's estimate."""
    order = _STATE_ORDER[table][state]
    n = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE state = '{state}' "
        f"ORDER BY {order} LIMIT {_CAP}) s"
    )
    if n < _CAP:
        return Count(int(n), True)
    guess = await estimate(conn, f"SELECT 1 FROM {table} WHERE state = '{state}'")
    return Count(max(guess, _CAP), False)


# The columns of each state's partial index (schema 010, 060, 070 and 0012's dead indexes).
_STATE_ORDER = {
    "tether_outbox": {"pending": "seq", "dead": "finished_at, seq"},
    "tether_webhook_deliveries": {
        "pending": "queue, seq", "claimed": "queue, seq", "dead": "finished_at, seq",
    },
    "tether_jobs": {
        "pending": "queue, priority DESC, seq", "claimed": "available_at",
        "dead": "finished_at, seq",
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TableCounts:
    name: str
    label: str
    pending: Count
    claimed: Count | None
    dead: Count
    done: Count
    oldest_pending: timedelta | None
    last_seq: int | None


_TABLES: tuple[tuple[str, str, bool], ...] = (
    ("tether_outbox", "Outbox", False),
    ("tether_webhook_deliveries", "Webhook deliveries", True),
    ("tether_jobs", "Jobs", True),
)
# The oldest live row of each table, each through that table's live partial index.
_OLDEST = {
    "tether_outbox": "SELECT created_at FROM tether_outbox WHERE state = 'pending' "
    "ORDER BY seq LIMIT 1",
    # One look-up per priority queue on (queue, seq).
    "tether_webhook_deliveries": "SELECT min(created_at) FROM ("
    + " UNION ALL ".join(
        f"(SELECT created_at FROM tether_webhook_deliveries WHERE queue = '{q}' "
        "AND state IN ('pending', 'claimed') ORDER BY seq LIMIT 1)"
        for q in ("high", "medium", "low")
    )
    + ") s",
    # Jobs are claimed by priority, not age: the oldest due job is read from the pending
    # index (its size is the backlog, not the table).
    "tether_jobs": "SELECT min(available_at) FROM tether_jobs WHERE state = 'pending' "
    "AND available_at <= now()",
}


async def _last_seq(conn: Any, table: str) -> int | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT CASE WHEN has_sequence_privilege(s, 'SELECT') THEN pg_sequence_last_value(s) END"
        " FROM pg_get_serial_sequence($1, 'seq') AS s",
        table,
    )


async def table_counts(pool: asyncpg.Pool) -> list[TableCounts]:
    out = []
    async with pool.acquire() as conn:
        now = await conn.fetchval("SELECT now()")
        for table, label, leased in _TABLES:
            pending = await capped_count(conn, table, "pending")
            claimed = await capped_count(conn, table, "claimed") if leased else None
            dead = await capped_count(conn, table, "dead")
            done = Count(await estimate(conn, f"SELECT 1 FROM {table} WHERE state = 'done'"), False)
            oldest = await conn.fetchval(_OLDEST[table])
            out.append(
                TableCounts(
                    table, label, pending, claimed, dead, done,
                    None if oldest is None else max(now - oldest, timedelta(0)),
                    await _last_seq(conn, table),
                )
            )  # fmt: skip
    return out


# --- webhooks and jobs ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: uuid.UUID
    tenant_id: str
    url: str
    description: str
    enabled: bool
    disabled_reason: str | None
    priority: str
    failing_since: datetime | None
    created_at: datetime
    filters: Sequence[str]

    @property
    def circuit(self) -> str:
        """What the delivery history says of the endpoint: the breaker itself lives in each
        dispatcher (memory or Redis), so the dashboard shows the state the table records."""
        if not self.enabled:
            return "disabled"
        return "failing" if self.failing_since is not None else "healthy"


_ENDPOINT = (
    "id, tenant_id, url, description, enabled, disabled_reason, priority, failing_since, "
    "created_at, filters"
)


def _endpoint(r: Any) -> EndpointRow:
    return EndpointRow(**{k: r[k] for k in _ENDPOINT.split(", ")})


async def endpoints(
    pool: asyncpg.Pool, after: tuple[str, datetime, uuid.UUID] | None, limit: int
) -> tuple[list[EndpointRow], tuple[str, datetime, uuid.UUID] | None]:
    """Endpoints by tenant then age, keyset on the (tenant_id, created_at) index."""
    if after is None:
        rows = await pool.fetch(
            f"SELECT {_ENDPOINT} FROM tether_webhook_endpoints "
            "ORDER BY tenant_id, created_at, id LIMIT $1",
            limit + 1,
        )
    else:
        rows = await pool.fetch(
            f"SELECT {_ENDPOINT} FROM tether_webhook_endpoints "
            "WHERE (tenant_id, created_at, id) > ($1, $2, $3) "
            "ORDER BY tenant_id, created_at, id LIMIT $4",
            *after,
            limit + 1,
        )
    page = [_endpoint(r) for r in rows[:limit]]
    last = page[-1] if len(rows) > limit and page else None
    return page, (None if last is None else (last.tenant_id, last.created_at, last.id))


async def endpoint(pool: asyncpg.Pool, id: uuid.UUID) -> EndpointRow | None:
    row = await pool.fetchrow(f"SELECT {_ENDPOINT} FROM tether_webhook_endpoints WHERE id = $1", id)
    return None if row is None else _endpoint(row)


async def recoveries(pool: asyncpg.Pool, since: date) -> list[tuple[date, str, int]]:
    """Stale jobs rescued per day and queue (tether_job_recoveries, keyed by day)."""
    rows = await pool.fetch(
        "SELECT day, queue, recovered FROM tether_job_recoveries WHERE day >= $1 "
        "ORDER BY day DESC, queue LIMIT 1000",
        since,
    )
    return [(r["day"], r["queue"], int(r["recovered"])) for r in rows]


# --- runner registry --------------------------------------------------------------------------
async def last_beats(
    pool: asyncpg.Pool, runner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[datetime, dict[str, float]]]]:
    """The last two heartbeats of each runner, newest first (two look-ups each on the beats'
    (runner_id, at) key), so a page can show a counter's rate now rather than over a life."""
    if not runner_ids:
        return {}
    rows = await pool.fetch(
        "SELECT r.id, b.at, b.stats FROM unnest($1::uuid[]) AS r(id) CROSS JOIN LATERAL ("
        "SELECT at, stats FROM tether_runner_beats WHERE runner_id = r.id "
        "ORDER BY at DESC LIMIT 2) b",
        list(runner_ids)[:500],
    )
    out: dict[uuid.UUID, list[tuple[datetime, dict[str, float]]]] = {}
    for r in rows:
        stats = r["stats"]
        data = orjson.loads(stats) if isinstance(stats, str | bytes) else stats
        out.setdefault(r["id"], []).append((r["at"], {k: float(v) for k, v in data.items()}))
    for beats in out.values():
        beats.sort(key=lambda b: b[0], reverse=True)
    return out
