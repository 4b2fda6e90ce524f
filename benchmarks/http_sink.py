"""Events per second through the generic HTTP sink, against a bare httpx loop posting the same
bodies with the same concurrency.

    .venv/bin/python benchmarks/http_sink.py [--events 2000] [--batch 100] [--concurrency 16]
                                             [--rounds 3]

A receiver process (uvicorn, one worker, answering 200 at once) runs on loopback. ``tether`` is
:class:`tether.sinks.http.HttpSink` publishing the events in relay-sized calls: CloudEvents
binary-mode headers, a Standard Webhooks signature, the SSRF-safe client (resolve, check and
pin every connection), the outcome mapping. ``bare`` is a plain ``httpx.AsyncClient`` posting
the same payloads with ``Content-Type`` only, nothing signed or checked. Contenders are
interleaved for ``--rounds`` rounds; medians are reported. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json, print_table, start_ok_receiver, use_uvloop

from tether.core.envelope import Event, make_event
from tether.net import SsrfPolicy
from tether.sinks.http import HttpSink
from tether.webhooks.signing import WebhookSecret


def make_events(n: int) -> list[Event]:
    return [
        make_event(
            "OrderPlaced",
            {"n": i, "note": "x" * 200},
            aggregate_type="order",
            aggregate_id=f"o-{i}",
            tenant_id="acme",
        )
        for i in range(n)
    ]


async def run_tether(
    url: str, events: list[Event], batch: int, concurrency: int
) -> tuple[float, float]:
    sink = await HttpSink.connect(
        url,
        policy=SsrfPolicy(allow=["127.0.0.1"]),
        secrets=[WebhookSecret.generate()],
        max_in_flight=concurrency,
    )
    started, cpu = time.perf_counter(), time.process_time()
    try:
        for start in range(0, len(events), batch):
            outcomes = await sink.publish(events[start : start + batch])
            assert all(o.ok for o in outcomes)
    finally:
        elapsed, spent = time.perf_counter() - started, time.process_time() - cpu
        await sink.close()
    return len(events) / elapsed, spent / len(events) * 1e6


async def run_bare(
    url: str, events: list[Event], batch: int, concurrency: int
) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=concurrency)
    slots = asyncio.Semaphore(concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=15.0) as client:

        async def post(event: Event) -> None:
            async with slots:
                response = await client.post(url, content=event.data, headers=headers)
                assert response.status_code == 200

        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(events), batch):
            await asyncio.gather(*(post(e) for e in events[start : start + batch]))
        spent = time.process_time() - cpu
        return len(events) / (time.perf_counter() - started), spent / len(events) * 1e6


async def main(args: argparse.Namespace) -> None:
    proc, port = start_ok_receiver()
    url = f"http://127.0.0.1:{port}/webhook/orders"
    events = make_events(args.events)
    rates: dict[str, list[float]] = {"tether": [], "bare": []}
    cpu: dict[str, list[float]] = {"tether": [], "bare": []}
    contenders = {"bare": run_bare, "tether": run_tether}
    try:
        await run_bare(url, events[:200], args.batch, args.concurrency)  # warm up both sides
        for _ in range(args.rounds):
            for name, run in contenders.items():
                rate, us = await run(url, events, args.batch, args.concurrency)
                rates[name].append(rate)
                cpu[name].append(us)
    finally:
        proc.terminate()
        proc.join(10)
    tether, bare = statistics.median(rates["tether"]), statistics.median(rates["bare"])
    tether_us, bare_us = statistics.median(cpu["tether"]), statistics.median(cpu["bare"])
    load = os.getloadavg()[0]
    print_table(
        f"HTTP sink: {args.events} events, calls of {args.batch}, {args.concurrency} in flight "
        f"(median of {args.rounds}; load average {load:.1f})",
        ["contender", "events/s", "client CPU µs/event", "rounds (events/s)"],
        [
            ["tether HttpSink (signed, CloudEvents, SSRF-safe client)", f"{tether:,.0f}",
             f"{tether_us:,.0f}", ", ".join(f"{r:,.0f}" for r in rates["tether"])],
            ["bare httpx loop, same bodies", f"{bare:,.0f}", f"{bare_us:,.0f}",
             ", ".join(f"{r:,.0f}" for r in rates["bare"])],
        ],
    )  # fmt: skip
    emit_json(
        {
            "bench": "http_sink",
            "events": args.events,
            "batch": args.batch,
            "concurrency": args.concurrency,
            "tether_per_s": round(tether),
            "tether_cpu_us_per_event": round(tether_us),
            "peer_cpu_us_per_event": round(bare_us),
            "peer": "bare httpx.AsyncClient, same bodies and concurrency",
            "peer_per_s": round(bare),
            "ratio": round(tether / bare, 2),
            "loadavg": round(load, 1),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    use_uvloop()
    asyncio.run(main(parser.parse_args()))
