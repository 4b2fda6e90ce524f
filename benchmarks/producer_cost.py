"""Producer cost: a business transaction with vs without ``add_event``.

    .venv/bin/python benchmarks/producer_cost.py [--tx 5000] [--seconds 5] [--rounds 3]

The business transaction inserts one row into ``orders`` and commits. Variants:

* ``asyncpg``               BEGIN; INSERT orders; COMMIT                       (baseline)
* ``asyncpg+tether``        ... + ``tether.outbox.add_event(conn, ...)``         (the target)
* ``asyncpg+tether_notify`` ... + ``add_event(..., notify=True)`` (one NOTIFY per transaction)
* ``asyncpg+raw_row``       (diagnostic, opt-in) the same outbox row by one prepared INSERT,
                            without Tether's Python: the database's share of the cost
* ``asyncpg+cte``           (diagnostic, opt-in) business row and outbox row in ONE statement
* ``sqlalchemy``            AsyncSession: ``session.begin()``; INSERT orders     (baseline)
* ``sqlalchemy+tether``     ... + ``add_event(session, ...)``
* ``sqlalchemy+faststream`` ... + faststream-outbox ``broker.publish(..., session=session)``
                            (the peer; it always sends ``pg_notify`` with its first row per
                            transaction)

1. Latency: one connection per variant, transactions one after another, variants interleaved
   transaction by transaction (rotating order) so drift and noise hit every variant alike;
   p50/p90/p99 per transaction.
2. Throughput: ``--clients`` (8) concurrent producers, each its own connection and by default
   its own process (``--procs``), committing as fast as they can for ``--seconds``; variants
   interleaved, ``--rounds`` times, median.

No relay runs meanwhile (it would compete for the 2 cores); the tables are truncated between
throughput runs so every variant starts from the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

BUSINESS_DDL = """
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text          NOT NULL,
    amount      numeric(12,2) NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now()
);
"""
INSERT_ORDER = "INSERT INTO orders (customer_id, amount) VALUES ($1, $2) RETURNING id"
INSERT_ORDER_SA = "INSERT INTO orders (customer_id, amount) VALUES (:c, :a) RETURNING id"
FS_QUEUE = "orders"
# Diagnostics: the same outbox row written without Tether's Python (one prepared INSERT), and
# the business row and the outbox row in one statement (one round trip instead of two).
RAW_OUTBOX = """INSERT INTO tether_outbox (id, partition_key, topic, type, aggregate_type,
    aggregate_id, payload) VALUES ($1, $2, 'order', 'OrderPlaced', 'order', $3, $4::json)"""
CTE_BOTH = """WITH o AS (INSERT INTO orders (customer_id, amount) VALUES ($1, $2) RETURNING id)
INSERT INTO tether_outbox (id, partition_key, topic, type, aggregate_type, aggregate_id, payload)
SELECT $3, 'order:' || o.id, 'order', 'OrderPlaced', 'order', o.id::text, $4::json FROM o"""


@dataclass
class Settings:
    tx: int = 5000
    seconds: float = 5.0
    clients: int = 8
    procs: int = 8
    rounds: int = 3
    variants: tuple[str, ...] = (
        "asyncpg",
        "asyncpg+tether",
        "asyncpg+tether_notify",
        "sqlalchemy",
        "sqlalchemy+tether",
        "sqlalchemy+faststream",
    )


# A transaction runner takes the iteration number and runs one whole business transaction.
Runner = Callable[[int], Awaitable[None]]


class Env:
    """Connections and objects one producer needs for every variant."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: asyncpg.Connection | None = None
        self.engine: Any = None
        self.sessions: Any = None
        self.fs_broker: Any = None

    async def open(self, variants: tuple[str, ...]) -> None:
        self.conn = await asyncpg.connect(self.dsn)
        if any(v.startswith("sqlalchemy") for v in variants):
            from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

            self.engine = create_async_engine(
                common.sqlalchemy_url(self.dsn), pool_size=1, max_overflow=0
            )
            self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
            if "sqlalchemy+faststream" in variants:
                from faststream_outbox import OutboxBroker

                self.fs_broker = OutboxBroker(self.engine, outbox_table=fs_table(), logger=None)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        if self.engine is not None:
            await self.engine.dispose()

    def runner(self, variant: str) -> Runner:
        from sqlalchemy import text

        from tether.outbox import add_event

        conn = self.conn
        assert conn is not None
        insert_sa = text(INSERT_ORDER_SA)

        async def pg_plain(i: int) -> None:
            async with conn.transaction():
                await conn.fetchval(INSERT_ORDER, f"cust-{i % 9973}", i % 50000 / 100)

        async def pg_tether(i: int, notify: bool = False) -> None:
            payload = common.make_payload(i, "")
            async with conn.transaction():
                oid = await conn.fetchval(INSERT_ORDER, f"cust-{i % 9973}", i % 50000 / 100)
                await add_event(
                    conn,
                    "OrderPlaced",
                    payload,
                    aggregate_type="order",
                    aggregate_id=str(oid),
                    notify=notify,
                )

        async def pg_tether_notify(i: int) -> None:
            await pg_tether(i, notify=True)

        async def pg_raw_row(i: int) -> None:
            payload = orjson.dumps(common.make_payload(i, "")).decode()
            async with conn.transaction():
                oid = await conn.fetchval(INSERT_ORDER, f"cust-{i % 9973}", i % 50000 / 100)
                await conn.execute(RAW_OUTBOX, uuid.uuid4(), f"order:{oid}", str(oid), payload)

        async def pg_cte(i: int) -> None:
            payload = orjson.dumps(common.make_payload(i, "")).decode()
            async with conn.transaction():
                await conn.execute(
                    CTE_BOTH, f"cust-{i % 9973}", i % 50000 / 100, uuid.uuid4(), payload
                )

        async def sa_plain(i: int) -> None:
            async with self.sessions() as session, session.begin():
                await session.execute(insert_sa, {"c": f"cust-{i % 9973}", "a": i % 50000 / 100})

        async def sa_tether(i: int) -> None:
            payload = common.make_payload(i, "")
            async with self.sessions() as session, session.begin():
                res = await session.execute(
                    insert_sa, {"c": f"cust-{i % 9973}", "a": i % 50000 / 100}
                )
                await add_event(
                    session,
                    "OrderPlaced",
                    payload,
                    aggregate_type="order",
                    aggregate_id=str(res.scalar_one()),
                )

        async def sa_faststream(i: int) -> None:
            payload = common.make_payload(i, str(uuid.uuid4()))
            async with self.sessions() as session, session.begin():
                await session.execute(insert_sa, {"c": f"cust-{i % 9973}", "a": i % 50000 / 100})
                await self.fs_broker.publish(payload, queue=FS_QUEUE, session=session)

        return {
            "asyncpg": pg_plain,
            "asyncpg+tether": pg_tether,
            "asyncpg+tether_notify": pg_tether_notify,
            "asyncpg+raw_row": pg_raw_row,
            "asyncpg+cte": pg_cte,
            "sqlalchemy": sa_plain,
            "sqlalchemy+tether": sa_tether,
            "sqlalchemy+faststream": sa_faststream,
        }[variant]


def fs_table() -> Any:
    from faststream_outbox import make_outbox_table
    from sqlalchemy import MetaData

    return make_outbox_table(MetaData(), table_name="fs_outbox")


async def setup(dsn: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from tether.store.postgres.ddl import full_schema_sql

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(full_schema_sql())
        await conn.execute(BUSINESS_DDL)
    finally:
        await conn.close()
    engine = create_async_engine(common.sqlalchemy_url(dsn))
    table = fs_table()
    async with engine.begin() as c:
        await c.run_sync(table.metadata.create_all)
    await engine.dispose()


async def truncate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE orders, tether_outbox, fs_outbox")
        await conn.execute("VACUUM ANALYZE orders, tether_outbox, fs_outbox")
    finally:
        await conn.close()


# --------------------------------------------------------------------------- latency


async def latency(dsn: str, settings: Settings) -> dict[str, list[float]]:
    env = Env(dsn)
    await env.open(settings.variants)
    timings: dict[str, list[float]] = {v: [] for v in settings.variants}
    runners = {v: env.runner(v) for v in settings.variants}
    clock = time.perf_counter
    try:
        for v, run in runners.items():  # warm up: prepared statements, pools, caches
            for i in range(100):
                await run(i)
        items = list(runners.items())
        for i in range(settings.tx):
            for k in range(len(items)):  # rotate the order so no variant always goes first
                v, run = items[(i + k) % len(items)]
                t = clock()
                await run(i)
                timings[v].append(clock() - t)
    finally:
        await env.close()
    return timings


# --------------------------------------------------------------------------- throughput


async def _clients(
    dsn: str, variant: str, n: int, ready: Any, go: Any, seconds: float, first: int
) -> int:
    envs = [Env(dsn) for _ in range(n)]
    await asyncio.gather(*(e.open((variant,)) for e in envs))
    counts = [0] * n
    runs = [e.runner(variant) for e in envs]
    for k, run in enumerate(runs):  # warm up before the start line
        for i in range(20):
            await run((first + k) * 10_000_000 + i)
    stop_at = 0.0

    async def client(k: int) -> None:
        run = runs[k]
        i = (first + k) * 10_000_000 + 100
        while time.perf_counter() < stop_at:
            i += 1
            await run(i)
            counts[k] += 1

    ready.put(os.getpid())
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    stop_at = time.perf_counter() + seconds
    try:
        await asyncio.gather(*(client(k) for k in range(n)))
    finally:
        await asyncio.gather(*(e.close() for e in envs))
    return sum(counts)


def _clients_child(
    dsn: str, variant: str, n: int, ready: Any, go: Any, seconds: float, first: int, out: Any
) -> None:
    common.use_uvloop()
    out.put(asyncio.run(_clients(dsn, variant, n, ready, go, seconds, first)))


async def throughput(dsn: str, variant: str, settings: Settings) -> float:
    """``settings.clients`` producers spread over ``settings.procs`` processes."""
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    per = [
        settings.clients // settings.procs + (1 if k < settings.clients % settings.procs else 0)
        for k in range(settings.procs)
    ]
    procs = [
        ctx.Process(
            target=_clients_child,
            daemon=True,
            args=(dsn, variant, n, ready, go, settings.seconds, sum(per[:k]), out),
        )
        for k, n in enumerate(per)
        if n
    ]
    loop = asyncio.get_running_loop()
    for p in procs:
        p.start()
    for _ in procs:
        await loop.run_in_executor(None, ready.get, True, 60)
    await asyncio.sleep(0.3)
    go.set()
    total = 0
    for _ in procs:
        total += await loop.run_in_executor(None, out.get, True, settings.seconds + 60)
    for p in procs:
        p.join(timeout=10)
    return total / settings.seconds


# --------------------------------------------------------------------------- main


def _ms(values: list[float], p: float) -> float:
    return round(common.pct(sorted(values), p) * 1000, 3)


async def main(settings: Settings) -> None:
    async with common.temp_database("tether_bench_prod") as dsn:
        await setup(dsn)
        print(
            f"  latency: {settings.tx} transactions per variant, one connection "
            f"({common.load_note()})",
            flush=True,
        )
        timings = await latency(dsn, settings)
        tput: dict[str, list[float]] = {v: [] for v in settings.variants}
        for rnd in range(1, settings.rounds + 1):
            for v in settings.variants:
                await truncate(dsn)
                tput[v].append(await throughput(dsn, v, settings))
                print(f"  throughput r{rnd} {v}: {tput[v][-1]:.0f} tx/s", flush=True)
    report(settings, timings, tput)


def report(
    settings: Settings, timings: dict[str, list[float]], tput: dict[str, list[float]]
) -> None:
    base_of = {
        v: ("asyncpg" if v.startswith("asyncpg") else "sqlalchemy") for v in settings.variants
    }
    lat = {v: {"p50": _ms(t, 50), "p90": _ms(t, 90), "p99": _ms(t, 99)} for v, t in timings.items()}
    med = {v: common.median(x) for v, x in tput.items()}
    rows = []
    for v in settings.variants:
        base = base_of[v]
        p50_added = round(lat[v]["p50"] - lat[base]["p50"], 3) if base in lat else None
        vs_base = f"{med[v] / med[base]:.0%}" if med.get(base) else "-"
        rows.append(
            [
                v,
                lat[v]["p50"],
                lat[v]["p90"],
                lat[v]["p99"],
                p50_added,
                " / ".join(f"{x:.0f}" for x in tput[v]),
                round(med[v]),
                vs_base,
            ]
        )
    common.print_table(
        f"Producer cost: business transaction (+ outbox event), latency on 1 connection (ms), "
        f"throughput at {settings.clients} producers (tx/s)",
        [
            "variant",
            "p50",
            "p90",
            "p99",
            "p50 added",
            "tx/s per round",
            "median tx/s",
            "vs baseline",
        ],
        rows,
    )

    def added(v: str) -> float | None:
        b = base_of.get(v)
        return round(lat[v]["p50"] - lat[b]["p50"], 3) if v in lat and b in lat else None

    def share(v: str) -> float | None:
        b = base_of.get(v)
        return round(med[v] / med[b], 3) if v in med and b in med and med[b] else None

    common.emit_json(
        {
            "bench": "producer_cost",
            "tether_p50_added_ms": added("asyncpg+tether"),
            "tether_throughput_share": share("asyncpg+tether"),
            "baseline_p50_ms": lat.get("asyncpg", {}).get("p50"),
            "tether_p50_ms": lat.get("asyncpg+tether", {}).get("p50"),
            "baseline_tx_per_s": round(med["asyncpg"]) if "asyncpg" in med else None,
            "tether_tx_per_s": round(med["asyncpg+tether"]) if "asyncpg+tether" in med else None,
            "peer": "faststream-outbox",
            "peer_p50_added_ms": added("sqlalchemy+faststream"),
            "peer_throughput_share": share("sqlalchemy+faststream"),
            "sqlalchemy_tether_p50_added_ms": added("sqlalchemy+tether"),
            "sqlalchemy_tether_throughput_share": share("sqlalchemy+tether"),
            "notify_p50_added_ms": added("asyncpg+tether_notify"),
            "notify_throughput_share": share("asyncpg+tether_notify"),
            "latency_ms": lat,
            "throughput_tx_per_s": {v: [round(x) for x in xs] for v, xs in tput.items()},
            "settings": asdict(settings),
            **common.environment(),
        }
    )


def parse_args() -> Settings:
    s = Settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tx", type=int, default=s.tx)
    p.add_argument("--seconds", type=float, default=s.seconds)
    p.add_argument("--clients", type=int, default=s.clients)
    p.add_argument(
        "--procs",
        type=int,
        default=s.procs,
        help="processes the producers are spread over (default: one each)",
    )
    p.add_argument("--rounds", type=int, default=s.rounds)
    p.add_argument("--variants", default=",".join(s.variants))
    a = p.parse_args()
    return Settings(
        tx=a.tx,
        seconds=a.seconds,
        clients=a.clients,
        procs=max(1, min(a.procs, a.clients)),
        rounds=a.rounds,
        variants=tuple(a.variants.split(",")),
    )


if __name__ == "__main__":
    common.use_uvloop()
    asyncio.run(main(parse_args()))
