"""Recovery after a broker outage: steady single-event transactions, NATS stopped and started
again with its standard command, two relay processes; how long until the backlog is under one
second of traffic. Stops NATS: run it alone, never beside the test suite.

    .venv/bin/python benchmarks/outage_recovery.py [--rate 1000] [--outage 60] [--keys 10]

Each shape runs in its own database and stream: first the backlog spread over ``--keys``
partition keys (tenant-keyed events), then, as the peer, every event on its own key (the
friendly shape). The producer is open loop at ``--rate`` events/s, one event per transaction
through ``add_event``; it runs through the outage and on until the backlog has recovered. Then
the producer stops, the relays drain, and the stream is read back: every committed id must be
there exactly once (a transaction whose commit failed may or may not be).

Ends with one JSON line: {"bench": "outage_recovery", "recovery_s": ..., "peer_recovery_s": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _common as common
import relay_drain
from tests.support import chaos

from tether.outbox import add_event
from tether.store.postgres.ddl import full_schema_sql

PENDING = "SELECT count(*) FROM tether_outbox WHERE state = 'pending'"


@dataclass
class Producer:
    dsn: str
    rate: float
    keys: int
    committed: set[str] = field(default_factory=set)
    unknown: int = 0  # commits whose outcome the producer could not learn
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, workers: int = 4) -> None:
        pool = await asyncpg.create_pool(self.dsn, min_size=workers, max_size=workers)
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10_000)
        try:
            tasks = [asyncio.create_task(self._work(pool, queue)) for _ in range(workers)]
            start, n = time.perf_counter(), 0
            while not self.stop.is_set():
                due = start + n / self.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await queue.put(n)
                n += 1
            await queue.join()
            for t in tasks:
                t.cancel()
        finally:
            await pool.close()

    async def _work(self, pool: asyncpg.Pool, queue: asyncio.Queue[int]) -> None:
        while True:
            i = await queue.get()
            eid = uuid.uuid4()
            key = str(i % self.keys) if self.keys else str(i)
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await add_event(
                        conn,
                        "OrderPlaced",
                        common.make_payload(i, str(eid)),
                        aggregate_type="tenant",
                        aggregate_id=key,
                        id=eid,
                    )
                self.committed.add(str(eid))
            except (OSError, asyncpg.PostgresError):
                self.unknown += 1
            finally:
                queue.task_done()


async def _pending(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(PENDING))
    finally:
        await conn.close()


async def one_shape(
    keys: int, rate: float, outage: float, warmup: float, tag: str
) -> dict[str, Any]:
    stream, subject = f"OUTAGE_{tag}_{keys}".upper(), f"outage.{tag}.k{keys}"
    settings = relay_drain.Settings(tether_procs=2, tether_batch=1000)
    ctx = mp.get_context("spawn")
    ready, out, go, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    async with common.temp_database() as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(full_schema_sql())
        await conn.close()
        await common.create_stream(stream, [subject])
        target = relay_drain.Target("tether", dsn, stream, subject, "tether_outbox", PENDING)
        procs = [
            ctx.Process(
                target=relay_drain._child,
                args=("tether", target, settings, ready, go, stop, out),
                daemon=True,
            )
            for _ in range(settings.tether_procs)
        ]
        for p in procs:
            p.start()
        loop = asyncio.get_running_loop()
        for _ in procs:
            await loop.run_in_executor(None, ready.get, True, 120)
        go.set()
        producer = Producer(dsn, rate, keys)
        producing = asyncio.create_task(producer.run())
        peak, recovery = 0, float("nan")
        try:
            await asyncio.sleep(warmup)
            try:
                await loop.run_in_executor(None, chaos.stop, "nats")
                print(f"  [{_label(keys)}] NATS stopped for {outage:g}s", flush=True)
                await asyncio.sleep(outage)
            finally:  # the standard start command, whatever happened (it waits for the port)
                await loop.run_in_executor(None, chaos.start, "nats")
            back = time.monotonic()
            while time.monotonic() - back < 300:
                pending = await _pending(dsn)
                peak = max(peak, pending)
                if pending < rate:
                    recovery = time.monotonic() - back
                    break
                await asyncio.sleep(0.1)
            print(
                f"  [{_label(keys)}] backlog peak {peak}, recovered in {recovery:.1f}s", flush=True
            )
            await asyncio.sleep(3)  # steady traffic again before the producer stops
        finally:
            producer.stop.set()
            await producing
        deadline = time.monotonic() + 120
        while await _pending(dsn) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        read, ids = await common.collect_msg_ids(stream, subject)
        await common.delete_stream(stream)
    missing = producer.committed - ids
    return {
        "keys": keys,
        "backlog_peak": peak,
        "recovery_s": round(recovery, 2),
        "committed": len(producer.committed),
        "unknown_commits": producer.unknown,
        "stream_msgs": read,
        "missing": len(missing),
        "duplicates": read - len(ids),
    }


def _label(keys: int) -> str:
    return "all distinct" if keys == 0 else f"{keys} keys"


async def main(rate: float, outage: float, keys: int, warmup: float) -> None:
    tag = common.run_id()
    results = [await one_shape(k, rate, outage, warmup, tag) for k in (keys, 0)]
    common.print_table(
        f"Recovery after a {outage:g}s NATS outage at {rate:g} events/s, 2 relay processes",
        ["shape", "backlog peak", "recovery s", "committed", "missing", "dup msgs", "target"],
        [
            [
                _label(r["keys"]),
                r["backlog_peak"],
                r["recovery_s"],
                r["committed"],
                r["missing"],
                r["duplicates"],
                "<= 15 s: " + ("met" if r["recovery_s"] <= 15 else "MISSED"),
            ]
            for r in results
        ],
    )
    mine, peer = results
    common.emit_json(
        {
            "bench": "outage_recovery",
            "rate": rate,
            "outage_s": outage,
            "keys": keys,
            "recovery_s": mine["recovery_s"],
            "peer": "same relay, every event on its own key",
            "peer_recovery_s": peer["recovery_s"],
            "ratio": round(mine["recovery_s"] / peer["recovery_s"], 2)
            if peer["recovery_s"]
            else None,
            "all_committed_delivered": all(r["missing"] == 0 for r in results),
            "runs": results,
            **common.environment(),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=5)
    args = parser.parse_args()
    common.use_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.rate, args.outage, args.keys, args.warmup))
