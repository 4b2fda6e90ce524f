"""Producer cost with tenancy and row-level security on vs off.

    .venv/bin/python benchmarks/producer_tenancy.py [--tx 3000] [--rounds 3]

One business transaction: BEGIN; INSERT orders; ``add_event(conn, ...)``; COMMIT, on asyncpg,
as an application role (not the tables' owner, so row-level security applies to it when on).
Two databases with the same schema, one per setting, in the same process:

* ``off``       row-level security off, ``ProducerPolicy()``; the event still names its tenant
* ``on``        ``SELECT tether_tenancy(true)``, ``ProducerPolicy(tenancy=True)``: the insert
                scopes the transaction (``tether_set_tenant``) and the policy checks the row
* ``off+key`` / ``on+key``   the same with an idempotency key (a second statement, on a table
                with its own policy)

Variants are interleaved transaction by transaction (rotating order), so drift and noise hit
them alike; per variant p50/p90 and the mean per transaction, median over ``--rounds``. The
target: ``on`` within 10% of ``off``. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from tether.outbox import ProducerPolicy, add_event, configure
from tether.store.postgres.ddl import full_schema_sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

BUSINESS_DDL = """
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text          NOT NULL,
    amount      numeric(12,2) NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now()
)"""
INSERT_ORDER = "INSERT INTO orders (customer_id, amount) VALUES ($1, $2) RETURNING id"
TABLES = ("orders", "tether_outbox", "tether_outbox_keys")
VARIANTS = ("off", "on", "off+key", "on+key")


async def prepare(dsn: str, role: str, rls: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(full_schema_sql())
        await conn.execute(BUSINESS_DDL)
        await conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON {", ".join(TABLES)} TO "{role}"'
        )
        if rls:
            await conn.execute("SELECT tether_tenancy(true)")
    finally:
        await conn.close()


def as_role(dsn: str, role: str) -> str:
    scheme, _, rest = dsn.partition("://")
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def transaction(
    conn: asyncpg.Connection, policy: ProducerPolicy, key: bool
) -> Callable[[int], Awaitable[None]]:
    async def run(i: int) -> None:
        configure(policy)
        async with conn.transaction():
            order = await conn.fetchval(INSERT_ORDER, f"c-{i % 97}", 12.5)
            await add_event(
                conn,
                "OrderPlaced",
                {"order_id": order, "amount": "12.50"},
                tenant_id=f"tenant-{i % 7}",
                aggregate_type="order",
                aggregate_id=str(order),
                idempotency_key=f"order-{uuid.uuid4()}" if key else None,
            )

    return run


async def round_(
    runs: dict[str, Callable[[int], Awaitable[None]]], tx: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(tx):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            await runs[name](i)
            times[name].append((time.perf_counter() - start) * 1e6)
    return times


async def main(tx: int, rounds: int) -> None:
    role = f"tether_bench_app_{common.run_id()}"
    admin = await asyncpg.connect(common.PG_ADMIN_DSN)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        async with common.temp_database() as off_dsn, common.temp_database() as on_dsn:
            await prepare(off_dsn, role, rls=False)
            await prepare(on_dsn, role, rls=True)
            off = await asyncpg.connect(as_role(off_dsn, role))
            on = await asyncpg.connect(as_role(on_dsn, role))
            try:
                runs = {
                    "off": transaction(off, ProducerPolicy(), key=False),
                    "on": transaction(on, ProducerPolicy(tenancy=True), key=False),
                    "off+key": transaction(off, ProducerPolicy(), key=True),
                    "on+key": transaction(on, ProducerPolicy(tenancy=True), key=True),
                }
                await round_(runs, min(300, tx))  # warm-up: plans, caches
                results = [await round_(runs, tx) for _ in range(rounds)]
            finally:
                configure(ProducerPolicy())
                await off.close()
                await on.close()
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()

    summary: dict[str, dict[str, float]] = {}
    for name in VARIANTS:
        per_round = [sorted(r[name]) for r in results]
        summary[name] = {
            "p50_us": round(common.median(common.pct(v, 50) for v in per_round), 1),
            "p90_us": round(common.median(common.pct(v, 90) for v in per_round), 1),
            "mean_us": round(common.median(sum(v) / len(v) for v in per_round), 1),
        }
    overhead = {
        "on_vs_off_p50_pct": round(
            (summary["on"]["p50_us"] / summary["off"]["p50_us"] - 1) * 100, 1
        ),
        "on_key_vs_off_key_p50_pct": round(
            (summary["on+key"]["p50_us"] / summary["off+key"]["p50_us"] - 1) * 100, 1
        ),
    }
    common.print_table(
        f"Producer cost, tenancy + RLS on vs off ({tx} tx x {rounds} rounds; {common.load_note()})",
        ["variant", "p50 us", "p90 us", "mean us"],
        [[n, s["p50_us"], s["p90_us"], s["mean_us"]] for n, s in summary.items()],
    )
    print(
        f"on vs off: {overhead['on_vs_off_p50_pct']:+.1f}% (p50), with a key: "
        f"{overhead['on_key_vs_off_key_p50_pct']:+.1f}%; target within 10%"
    )
    common.emit_json(
        {
            "bench": "producer_tenancy",
            "tether_p50_us": summary["on"]["p50_us"],
            "peer": "add_event with tenancy and RLS off",
            "peer_p50_us": summary["off"]["p50_us"],
            "ratio": round(summary["on"]["p50_us"] / summary["off"]["p50_us"], 3),
            "target_ratio_max": 1.1,
            "tx": tx,
            "rounds": rounds,
            "variants": summary,
            **overhead,
            **common.environment(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx", type=int, default=3000, help="transactions per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    common.use_uvloop()
    asyncio.run(main(args.tx, args.rounds))
