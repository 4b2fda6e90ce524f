"""Outbox scale: the relay's claim and drain with N finished rows kept vs an empty table.

    .venv/bin/python benchmarks/outbox_scale.py [--finished 1000000] [--pending 50000]
        [--rounds 3] [--cases empty/mark,hot/mark,empty/archive,archive/archive]

Four cases, each in its own temporary database with Tether's schema:

* ``empty/mark``     no finished rows; published rows are marked ``done`` in the hot table
                     (``keep_published=True``, today's behaviour), the baseline of ``hot``.
* ``hot/mark``       N finished (``done``) rows in the hot table, same settling.
* ``empty/archive``  no finished rows; published rows move to the monthly archive
                     (``keep_published=True, archive=True``), the baseline of ``archive``.
* ``archive/archive`` N finished rows in the archive (spread over 3 months), same settling.
* ``hot_before/mark`` (only with ``--cases``) ``hot/mark`` with the indexes before migration
                     0011: every finished row's event id indexed, not only dead rows'.

Rows are generated in the server (``INSERT ... SELECT generate_series``, ~314-byte JSON
payloads, 1,000 keys): the four databases get their finished rows first (lower seq, as old
rows' is). Then ``--rounds`` rounds, each case in turn within a round (so a case and its
baseline are measured minutes apart at most, on a shared machine whose load swings): insert
the pending backlog, VACUUM ANALYZE and CHECKPOINT, and drain it, claiming 1,000 events at a
time on one connection and settling each batch as published (no sink: the database's work
only). Timed: each claim (entering ``store.claim``: its selects and row locks) for p50/p99 over
every round's claims, and each drain for its rate (the median round is reported). The target
is each loaded case within 1.5x of its empty baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

from tether.outbox import partitions
from tether.outbox.store_pg import PostgresOutboxStore
from tether.store.postgres import ddl

TARGET = 1.5
BATCH = 1000
KEYS = 1000
CASES = ("empty/mark", "hot/mark", "empty/archive", "archive/archive")
OPTIONAL = ("hot_before/mark",)
# Each loaded layout against its empty baseline.
BASELINES = {
    "hot": "empty/mark",
    "hot_before": "empty/mark",
    "archive": "empty/archive",
}
# Migration 0011 indexed event ids of dead rows only; before it every finished row's id was.
_BEFORE_0011 = """DROP INDEX tether_outbox_dead_id;
CREATE INDEX tether_outbox_finished_id ON tether_outbox (id) WHERE state IN ('done', 'dead')"""

# One generated row of the outbox; {state} and {finished} are filled per case.
_COLUMNS = """id, partition_key, state, attempts, created_at, finished_at, topic, type, source,
    payload"""
_ROWS = """SELECT gen_random_uuid(), 'order:' || (i % {keys}), {state}, {attempts},
    now() - make_interval(secs => {age}), {finished}, 'orders', 'OrderPlaced', 'bench',
    json_build_object('order_id', i, 'customer_id', 'cust-' || (i % 9973),
                      'currency', 'EUR', 'total', (i % 50000) / 100.0,
                      'note', repeat('x', 200))
FROM generate_series(1, $1::bigint) AS i"""
# Finished rows spread over the last 90 days (three monthly partitions or so).
_AGE = "(i % 7776000)"


@dataclass
class Result:
    case: str
    finished: int
    pending: int
    claim_p50_ms: float
    claim_p99_ms: float
    drain_per_s: float
    load_s: float
    rounds_per_s: list[float]


async def _load(dsn: str, layout: str, finished: int) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(ddl.full_schema_sql())
        if layout != "empty":
            await partitions.ensure_partitions(conn, ahead=1)
            await _create_past_months(conn)
        if layout == "hot_before":
            await conn.execute(_BEFORE_0011)  # before the load, which maintains it as settling did
        if layout in ("hot", "hot_before") and finished:
            rows = _ROWS.format(
                keys=KEYS,
                state="'done'",
                attempts=1,
                age=_AGE,
                finished=f"now() - make_interval(secs => {_AGE})",
            )
            await conn.execute(f"INSERT INTO tether_outbox ({_COLUMNS}) {rows}", finished)
        if layout == "archive" and finished:
            rows = _ROWS.format(
                keys=KEYS,
                state="'done'",
                attempts=1,
                age=_AGE,
                finished=f"now() - make_interval(secs => {_AGE})",
            )
            await conn.execute(
                f"""INSERT INTO tether_outbox_archive (seq, id, partition_key, attempts,
                        created_at, finished_at, done_sinks, errors, topic, type, version,
                        source, payload)
                    SELECT row_number() OVER (), id, partition_key, attempts, created_at,
                           finished_at, '{{}}', '[]', topic, type, 1, source, payload
                    FROM ({rows}) AS g ({_COLUMNS})""",
                finished,
            )
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _refill(dsn: str, pending: int) -> None:
    """A round's backlog, then VACUUM ANALYZE (what the last drain left dead, as autovacuum
    would clear it) and CHECKPOINT, so every case starts its drain alike."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = _ROWS.format(keys=KEYS, state="'pending'", attempts=0, age=0, finished="NULL")
        await conn.execute(f"INSERT INTO tether_outbox ({_COLUMNS}) {rows}", pending)
    finally:
        await conn.close()
    await common.settle_table(dsn, "tether_outbox")
    await common.settle_table(dsn, "tether_outbox_archive")


async def _create_past_months(conn: asyncpg.Connection) -> None:
    # Months back to 90 days ago, so the finished rows land in real partitions.
    now = await conn.fetchval("SELECT now()")
    for back in range(4):
        await partitions.ensure_partitions(
            conn, ahead=0, now=partitions.add_months(partitions.month_start(now), -back)
        )


async def _drain(dsn: str, archive: bool, pending: int) -> tuple[list[float], float]:
    store = await PostgresOutboxStore.connect(dsn, keep_published=True, archive=archive)
    claims: list[float] = []
    done = 0
    started = time.perf_counter()
    try:
        while done < pending:
            t0 = time.perf_counter()
            async with store.claim(BATCH, run=16) as batch:
                claims.append((time.perf_counter() - t0) * 1000)
                if not batch.events:
                    raise RuntimeError(f"claim found nothing with {pending - done} rows left")
                await batch.settle([e.seq for e in batch.events], [])
                done += len(batch.events)
    finally:
        await store.close()
    return claims, pending / (time.perf_counter() - started)


async def run_cases(
    cases: Sequence[tuple[str, str]], finished: int, pending: int, rounds: int
) -> list[Result]:
    async with contextlib.AsyncExitStack() as stack:
        dsns: list[str] = []
        loads: list[float] = []
        for layout, _ in cases:
            dsn = await stack.enter_async_context(common.temp_database("tether_scale"))
            loads.append(await _load(dsn, layout, 0 if layout == "empty" else finished))
            dsns.append(dsn)
            _note(f"loaded {layout} in {loads[-1]:.0f}s")
        claims: list[list[float]] = [[] for _ in cases]
        rates: list[list[float]] = [[] for _ in cases]
        for r in range(rounds):
            for i, ((layout, settle), dsn) in enumerate(zip(cases, dsns, strict=True)):
                await _refill(dsn, pending)
                got, rate = await _drain(dsn, settle == "archive", pending)
                leftover = await _count(dsn)
                if leftover:
                    raise RuntimeError(f"{layout}/{settle}: {leftover} pending rows left")
                claims[i] += got
                rates[i].append(rate)
                _note(
                    f"round {r + 1} {layout}/{settle}: claim p50 {statistics.median(got):.1f} ms,"
                    f" drain {rate:,.0f}/s ({common.load_note()})"
                )
    results = []
    for (layout, settle), load_s, got, per_round in zip(cases, loads, claims, rates, strict=True):
        q = statistics.quantiles(got, n=100, method="inclusive")
        results.append(
            Result(
                f"{layout}/{settle}",
                0 if layout == "empty" else finished,
                pending,
                round(statistics.median(got), 2),
                round(q[98], 2),
                round(statistics.median(per_round)),
                round(load_s, 1),
                [round(x) for x in per_round],
            )
        )
    return results


def _note(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        left = await conn.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'pending'")
        return int(left)
    finally:
        await conn.close()


async def main(cases: Sequence[str], finished: int, pending: int, rounds: int) -> None:
    load_before = os.getloadavg()[0]
    split = [(c.split("/")[0], c.split("/")[1]) for c in cases]
    results = await run_cases(split, finished, pending, rounds)
    by = {r.case: r for r in results}
    print(
        f"\nfinished rows: {finished:,}; pending backlog: {pending:,}; claims of {BATCH};"
        f" {rounds} rounds; {common.load_note()}"
    )
    print("| case | finished rows | claim p50 ms | claim p99 ms | drain events/s | vs empty |")
    print("|---|---:|---:|---:|---:|---|")
    ratios: dict[str, dict[str, float]] = {}
    for r in results:
        note = ""
        layout = r.case.split("/")[0]
        if layout in BASELINES and BASELINES[layout] in by:
            base = by[BASELINES[layout]]
            ratio = {
                "p50": r.claim_p50_ms / base.claim_p50_ms,
                "p99": r.claim_p99_ms / base.claim_p99_ms,
                "drain": base.drain_per_s / r.drain_per_s,
            }
            ratios[layout] = {k: round(v, 2) for k, v in ratio.items()}
            worst = max(ratio.values())
            note = (
                f"p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x, drain {ratio['drain']:.2f}x"
                f" slower: {'within' if worst <= TARGET else 'OVER'} {TARGET}x"
            )
        print(
            f"| {r.case} | {r.finished:,} | {r.claim_p50_ms} | {r.claim_p99_ms} | "
            f"{r.drain_per_s:,.0f} | {note} |"
        )
    line = {
        "bench": "outbox_scale",
        "peer": "the same claims and drain on an empty table",
        "finished": finished,
        "pending": pending,
        "batch": BATCH,
        "rounds": rounds,
        "target": TARGET,
        "ratios": ratios,
        "cases": [asdict(r) for r in results],
        "loadavg_1m_before": round(load_before, 2),
        **common.environment(),
    }
    print(orjson.dumps(line).decode())


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--finished", type=int, default=1_000_000, help="finished rows to keep")
    p.add_argument("--pending", type=int, default=50_000, help="pending backlog to drain")
    p.add_argument("--rounds", type=int, default=3, help="drains per case, interleaved")
    p.add_argument(
        "--cases",
        default=",".join(CASES),
        help=f"comma-separated, of {', '.join(CASES + OPTIONAL)}",
    )
    args = p.parse_args()
    if args.finished < 0 or args.pending < BATCH or args.rounds < 1:
        p.error(f"--finished must be >= 0, --pending >= {BATCH} and --rounds >= 1")
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in CASES + OPTIONAL]
    if unknown or not args.cases or len(set(args.cases)) != len(args.cases):
        p.error(f"--cases: unknown or repeated {unknown or args.cases}; of {CASES + OPTIONAL}")
    return args


if __name__ == "__main__":
    a = parse()
    common.use_uvloop()
    asyncio.run(main(a.cases, a.finished, a.pending, a.rounds))
