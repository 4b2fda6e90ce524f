"""Signed webhook deliveries per second, against a bare httpx loop posting the same bodies.

    .venv/bin/python benchmarks/webhooks_dispatch.py [--deliveries 3000] [--concurrency 32]
                                                     [--rounds 3]

A receiver process (uvicorn, one worker, answering 200 at once, or after 2 s on ``/slow``)
runs on loopback. ``tether`` is the dispatcher (:mod:`tether.webhooks.dispatcher`) draining
deliveries already fanned out into PostgreSQL: claim under leases, sign (Standard Webhooks),
POST through the SSRF-safe client, settle and log every attempt. ``bare`` is an httpx client
posting the same bodies with the same concurrency, with nothing claimed, signed or recorded.
Contenders are interleaved for ``--rounds`` rounds; medians are reported.

The second part mixes one slow endpoint (2 s answers) with nine fast ones and reports the fast
nine's rate against their rate alone (target >= 80%). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json, print_table, start_ok_receiver, temp_database, use_uvloop

from tether.core.envelope import make_event
from tether.net import SsrfPolicy
from tether.store.postgres.ddl import full_schema_sql
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig
from tether.webhooks.model import EndpointSettings
from tether.webhooks.secret_box import SecretBox
from tether.webhooks.sink import WebhooksSink, request_body
from tether.webhooks.store import EndpointStore

LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])
SLOW_SECONDS = 2.0


# --------------------------------------------------------------------------- the receiver


# --------------------------------------------------------------------------- contenders


async def load(pool: asyncpg.Pool, endpoints: list[Any], per_endpoint: list[int]) -> list[bytes]:
    """Fan ``per_endpoint[i]`` events out to endpoint i (each endpoint its own tenant)."""
    sink = WebhooksSink()
    bodies: list[bytes] = []
    async with pool.acquire() as conn, conn.transaction():
        for endpoint, count in zip(endpoints, per_endpoint, strict=True):
            events = [
                make_event("OrderPlaced", {"n": n, "note": "x" * 200}, tenant_id=endpoint.tenant_id)
                for n in range(count)
            ]
            for start in range(0, len(events), 1000):
                await sink.publish_in(conn, events[start : start + 1000])
            bodies += [request_body(e) for e in events]
    return bodies


async def reset(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE tether_webhook_deliveries, tether_webhook_attempts")


CPU: dict[str, list[float]] = {"tether": [], "bare": []}  # process CPU seconds per run


async def run_tether(
    pool: asyncpg.Pool, box: SecretBox, concurrency: int, until_done: str, expected: int
) -> float:
    config = DispatcherConfig(max_in_flight=concurrency, breaker=None, poll_interval=0.005)
    dispatcher = Dispatcher(pool, config=config, ssrf=LOOPBACK, box=box)
    stop = asyncio.Event()
    started, cpu = time.perf_counter(), time.process_time()
    runner = asyncio.create_task(dispatcher.run(stop))
    try:
        while await pool.fetchval(until_done) < expected:
            await asyncio.sleep(0.05)
        CPU["tether"].append(time.process_time() - cpu)
        return time.perf_counter() - started
    finally:
        stop.set()
        await runner
        await dispatcher.close()


async def run_bare(url: str, bodies: list[bytes], concurrency: int) -> float:
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency * 2)) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                headers = {"content-type": "application/json"}
                r = await client.post(url, content=body, headers=headers)
                r.raise_for_status()

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        CPU["bare"].append(time.process_time() - cpu)
        return time.perf_counter() - started


# --------------------------------------------------------------------------- the runs


async def main(args: argparse.Namespace) -> None:
    receiver, port = start_ok_receiver("/slow", SLOW_SECONDS)
    base = f"http://127.0.0.1:{port}"
    box = SecretBox(SecretBox.generate_key())
    n = args.deliveries
    try:
        async with temp_database() as dsn:
            schema = await asyncpg.connect(dsn)
            await schema.execute(full_schema_sql())
            await schema.close()
            pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
            store = EndpointStore(pool, ssrf=LOOPBACK, box=box)
            one = [await store.create("t0", EndpointSettings(f"{base}/fast", concurrency=1000))]
            fast = [
                await store.create(f"f{i}", EndpointSettings(f"{base}/fast{i}", concurrency=1000))
                for i in range(9)
            ]
            slow = [await store.create("slow", EndpointSettings(f"{base}/slow", concurrency=8))]
            done = "SELECT count(*) FROM tether_webhook_deliveries WHERE state = 'done'"
            done_fast = done + " AND tenant_id <> 'slow'"
            rates: dict[str, list[float]] = {"tether": [], "bare": [], "solo": [], "mixed": []}
            for _ in range(args.rounds):
                await reset(pool)
                bodies = await load(pool, one, [n])
                rates["bare"].append(n / await run_bare(f"{base}/fast", bodies, args.concurrency))
                rates["tether"].append(n / await run_tether(pool, box, args.concurrency, done, n))
                per = n // 9
                await reset(pool)
                await load(pool, fast, [per] * 9)
                seconds = await run_tether(pool, box, args.concurrency, done, per * 9)
                rates["solo"].append(per * 9 / seconds)
                await reset(pool)
                await load(pool, fast + slow, [per] * 9 + [per])
                seconds = await run_tether(pool, box, args.concurrency, done_fast, per * 9)
                rates["mixed"].append(per * 9 / seconds)
            await pool.close()
    finally:
        receiver.terminate()
        receiver.join(5)
    med = {k: statistics.median(v) for k, v in rates.items()}
    # CPU per delivery in this process (the receiver runs in its own): steadier than rates on a
    # shared machine. The tether figure covers the first CPU["tether"] entry of each round.
    cpu_us = {
        "bare": statistics.median(CPU["bare"]) / n * 1e6,
        "tether": statistics.median(CPU["tether"][0::3]) / n * 1e6,
    }
    ratio = med["tether"] / med["bare"]
    kept = med["mixed"] / med["solo"]
    print_table(
        f"Webhook deliveries/s, {n} per run, concurrency {args.concurrency}, "
        f"median of {args.rounds} (load average {os.getloadavg()[0]:.2f})",
        ["contender", "deliveries/s", "runs"],
        [
            ["bare httpx loop (no claim, sign, log)", f"{med['bare']:.0f}", _runs(rates["bare"])],
            ["tether dispatcher (signed, logged)", f"{med['tether']:.0f}", _runs(rates["tether"])],
            ["fast nine alone", f"{med['solo']:.0f}", _runs(rates["solo"])],
            ["fast nine + one 2 s endpoint", f"{med['mixed']:.0f}", _runs(rates["mixed"])],
        ],
    )
    print(f"tether / bare = {ratio:.2f} (target >= 0.70); fast nine kept {kept:.0%} (>= 80%)")
    print(
        f"CPU per delivery in the sender's process: bare {cpu_us['bare']:.0f} us, "
        f"tether {cpu_us['tether']:.0f} us"
    )
    emit_json(
        {
            "bench": "webhooks_dispatch",
            "deliveries": n,
            "concurrency": args.concurrency,
            "tether_per_s": round(med["tether"], 1),
            "peer": "bare httpx loop posting the same bodies",
            "peer_per_s": round(med["bare"], 1),
            "ratio": round(ratio, 3),
            "fast_nine_solo_per_s": round(med["solo"], 1),
            "fast_nine_with_slow_per_s": round(med["mixed"], 1),
            "fast_nine_kept": round(kept, 3),
            "cpu_us_per_delivery": {k: round(v) for k, v in cpu_us.items()},
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }
    )


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    use_uvloop()
    asyncio.run(main(parser.parse_args()))
