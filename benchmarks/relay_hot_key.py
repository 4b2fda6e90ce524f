"""Relay drain by backlog shape: the same backlog spread over 1, 10, 1,000 keys and all-distinct
keys, Postgres -> JetStream, Tether's relay in 2 processes against the bare loop in the same run;
then the claim's cost with a deep backlog on one key against a shallow one.

    .venv/bin/python benchmarks/relay_hot_key.py [--events 200000] [--shapes 1,10,1000,0]
        [--claim-deep 1000000]

* Drain: each shape gets a fresh database and stream; the bare loop (``relay_drain.py``'s
  ``bare``: no key order at all) drains the same number of events before and after the shapes,
  and the mean of the two is the ceiling. The
  stream is read back after every drain: exactly N distinct ``Nats-Msg-Id`` equal to the loaded
  ids, or the row says NO. Strict order on one key is bounded by one JetStream ack round trip
  per event (about 170 us here), so 1 and 10 keys have absolute targets, the wide shapes a ratio.
* Claim cost: ``--claim-deep`` events on one key, then 1,000; the median time of one
  ``store.claim(1000)`` (rolled back, so every claim sees the same backlog), 30 claims each.

Ends with one JSON line: {"bench": "relay_hot_key", "shapes": {...}, "claim_ratio": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import relay_drain

from tether.outbox.store_pg import PostgresOutboxStore
from tether.store.postgres.ddl import full_schema_sql

TARGETS = {
    1: ("events/s", 3000),
    10: ("events/s", 15000),
    1000: ("x bare", 0.8),
    0: ("x bare", 0.8),
}


def _label(keys: int) -> str:
    return "all distinct" if keys == 0 else f"{keys} key" + ("s" if keys > 1 else "")


async def sweep(events: int, shapes: list[int], tag: str) -> dict[str, Any]:
    settings = relay_drain.Settings(events=events, contenders=("tether", "bare"))
    # The bare loop runs before and after the shapes; its mean is the ceiling, so that drift on a
    # shared machine during the sweep moves both sides of every ratio alike.
    before = await relay_drain.one_round("bare", settings, 1, tag + "b")
    out: dict[str, Any] = {}
    results = []
    for keys in shapes:
        res = await relay_drain.one_round(
            "tether", replace(settings, keys=keys), 1, f"{tag}k{keys}"
        )
        results.append((keys, res))
    after = await relay_drain.one_round("bare", settings, 2, tag + "b")
    bare_per_s = round((before.per_s + after.per_s) / 2)
    out["bare_per_s"] = bare_per_s
    out["bare_runs"] = [before.per_s, after.per_s]
    for keys, res in results:
        out[_label(keys)] = {
            "keys": keys,
            "tether_per_s": res.per_s,
            "ratio_vs_bare": round(res.per_s / bare_per_s, 2),
            "all_ids_once": res.ids_match and res.stream_msgs == res.events,
            "relay_cpu_us_per_event": res.cpu_us_per_event,
        }
    return out


async def _load_one_key(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM tether_outbox")
        await conn.execute(
            """INSERT INTO tether_outbox (id, topic, type, payload, partition_key)
               SELECT gen_random_uuid(), 'orders', 'Step', '{"x": 1}', 'order:hot'
               FROM generate_series(1, $1)""",
            n,
        )
        await conn.execute("VACUUM ANALYZE tether_outbox")
    finally:
        await conn.close()


async def _claim_ms(dsn: str, claims: int) -> float:
    store = await PostgresOutboxStore.connect(dsn)
    times = []
    try:
        for _ in range(claims):
            t0 = time.perf_counter()
            try:
                async with store.claim(1000, run=16) as batch:
                    assert len(batch.events) == 1000
                    raise _Rollback
            except _Rollback:
                pass
            times.append(time.perf_counter() - t0)
    finally:
        await store.close()
    return statistics.median(times) * 1000


class _Rollback(Exception):
    pass


async def claim_cost(deep: int) -> dict[str, float]:
    async with common.temp_database() as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(full_schema_sql())
        await conn.close()
        await _load_one_key(dsn, deep)
        deep_ms = await _claim_ms(dsn, 30)
        await _load_one_key(dsn, 1000)
        shallow_ms = await _claim_ms(dsn, 30)
    return {"deep_ms": round(deep_ms, 2), "shallow_ms": round(shallow_ms, 2)}


def _verdict(keys: int, row: dict[str, Any]) -> str:
    unit, target = TARGETS.get(keys, ("x bare", 0.8))
    value = row["tether_per_s"] if unit == "events/s" else row["ratio_vs_bare"]
    return f">= {target:g} {unit}: {'met' if value >= target else 'MISSED'}"


async def main(events: int, shapes: list[int], deep: int) -> None:
    tag = common.run_id()
    result = await sweep(events, shapes, tag)
    claims = await claim_cost(deep)
    rows = []
    for keys in shapes:
        r = result[_label(keys)]
        rows.append(
            [
                _label(keys),
                r["tether_per_s"],
                result["bare_per_s"],
                r["ratio_vs_bare"],
                r["relay_cpu_us_per_event"],
                "yes" if r["all_ids_once"] else "NO",
                _verdict(keys, r),
            ]
        )
    common.print_table(
        f"Relay drain by backlog shape, {events} events, Postgres -> JetStream, 2 relay processes",
        ["shape", "tether ev/s", "bare ev/s", "ratio", "relay CPU us/ev", "all ids once", "target"],
        rows,
    )
    ratio = claims["deep_ms"] / claims["shallow_ms"]
    common.print_table(
        "Claim of 1000 rows on one key (median of 30)",
        [f"{deep} pending (ms)", "1000 pending (ms)", "ratio", "target <= 2"],
        [
            [
                claims["deep_ms"],
                claims["shallow_ms"],
                round(ratio, 2),
                "met" if ratio <= 2 else "MISSED",
            ]
        ],
    )
    common.emit_json(
        {
            "bench": "relay_hot_key",
            "events": events,
            "shapes": {k: v for k, v in result.items() if isinstance(v, dict)},
            "peer": "bare asyncpg+nats-py loop (no key order)",
            "peer_per_s": result["bare_per_s"],
            "claim_deep_ms": claims["deep_ms"],
            "claim_shallow_ms": claims["shallow_ms"],
            "claim_ratio": round(ratio, 2),
            **common.environment(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--shapes", default="0,1000,10,1", help="keys per shape; 0: all distinct")
    parser.add_argument("--claim-deep", type=int, default=1_000_000)
    args = parser.parse_args()
    common.use_uvloop()
    asyncio.run(main(args.events, [int(k) for k in args.shapes.split(",")], args.claim_deep))
