"""JetStream sink throughput: Tether's sink vs nats-py's ``js.publish_async``, same run.

Publishes N events of ~300 bytes in batches to a fresh stream per run, waiting for every
PubAck of a batch before the next one (what the relay does), and checks every outcome.
Runs alternate between contenders; the figure is the median of ``--runs``.

    .venv/bin/python benchmarks/sink_jetstream.py [--n 100000] [--batch 1000] [--runs 3]

The last line is one JSON object for the figures table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import nats
import nats.errors
from nats.js.api import StreamConfig

from tether.core.envelope import Event, make_event
from tether.core.errors import SinkUnavailableError
from tether.sinks import _nats_wire as wire
from tether.sinks.jetstream import JetStreamSink

URL = "nats://127.0.0.1:4222"
Runner = Callable[[Sequence[Event], int, str], Awaitable[tuple[float, float]]]


def build_events(n: int) -> list[Event]:
    payload = {
        "partner_id": "p-000123",
        "location": {"lat": 52.52, "lon": 13.405},
        "note": "x" * 180,
        "qty": 12,
        "currency": "EUR",
    }
    return [
        make_event(
            "PartnerLocationAdded",
            {**payload, "n": i},
            aggregate_type="partner",
            aggregate_id=f"p-{i % 1000}",
            tenant_id="acme",
            correlation_id=f"c-{i}",
        )
        for i in range(n)
    ]


async def fresh_stream(js: nats.js.JetStreamContext, prefix: str) -> str:
    name = prefix.upper()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"], duplicate_window=120))
    return name


async def run_tether(
    events: Sequence[Event], batch: int, prefix: str, raw: bool = True, hook: bool = True
) -> tuple[float, float]:
    sink = await JetStreamSink.connect(URL, subject_prefix=prefix, raw_frames=raw, fast_acks=hook)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(events), batch):
            outcomes = await sink.publish(events[i : i + batch])
            failed = [o for o in outcomes if not o.ok]
            if failed:
                raise RuntimeError(f"tether: {len(failed)} failed outcomes, first {failed[0]}")
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        await sink.close()


async def run_tether_subscription_acks(
    events: Sequence[Event], batch: int, prefix: str
) -> tuple[float, float]:
    return await run_tether(events, batch, prefix, hook=False)


async def run_tether_public(
    events: Sequence[Event], batch: int, prefix: str
) -> tuple[float, float]:
    return await run_tether(events, batch, prefix, raw=False, hook=False)


async def run_peer(events: Sequence[Event], batch: int, prefix: str) -> tuple[float, float]:
    nc = await nats.connect(URL)
    js = nc.jetstream(publish_async_max_pending=max(4000, batch))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(events), batch):
            futures = [
                await js.publish_async(f"{prefix}.{e.topic}", e.data, headers=wire.header_dict(e))
                for e in events[i : i + batch]
            ]
            acks = await asyncio.gather(*futures)
            if len(acks) != len(futures):
                raise RuntimeError("peer: missing acks")
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        await nc.close()


async def measure(
    name: str, runner: Runner, events: Sequence[Event], batch: int
) -> tuple[float, float]:
    """(messages per second, client CPU microseconds per message)"""
    admin = await nats.connect(URL)
    js = admin.jetstream()
    prefix = f"bench{uuid.uuid4().hex[:10]}"
    stream = await fresh_stream(js, prefix)
    try:
        seconds, cpu = await runner(events, batch, prefix)
        stored = (await js.stream_info(stream)).state.messages
        if stored != len(events):
            raise RuntimeError(f"{name}: stream holds {stored} messages, expected {len(events)}")
        return len(events) / seconds, cpu / len(events) * 1e6
    finally:
        await js.delete_stream(stream)
        await admin.close()


async def measure_retrying(
    name: str, runner: Runner, events: Sequence[Event], batch: int, attempts: int = 3
) -> tuple[float, float]:
    """A run cut short by a NATS restart (other suites' chaos tests share the server) is
    repeated, and said so on stderr."""
    for attempt in range(1, attempts + 1):
        try:
            return await measure(name, runner, events, batch)
        except (SinkUnavailableError, nats.errors.Error, OSError, TimeoutError) as exc:
            print(f"{name}: run {attempt} interrupted ({exc!r}); repeating", file=sys.stderr)
            await asyncio.sleep(3)
    raise RuntimeError(f"{name}: NATS kept failing")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-variants", action="store_true", help="only tether's default path and the peer"
    )
    args = parser.parse_args()
    events = build_events(args.n)
    size = statistics.mean(len(e.data) for e in events[:1000])
    contenders: dict[str, Runner] = {"tether JetStreamSink": run_tether}
    if not args.no_variants:
        contenders["tether, acks via subscription (fast_acks=False)"] = run_tether_subscription_acks
        contenders["tether, public nats-py API only"] = run_tether_public
    contenders["nats-py publish_async"] = run_peer
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    await measure("warm-up", run_tether, events[:5000], args.batch)
    for _ in range(args.runs):
        for name, runner in contenders.items():
            rate, cpu = await measure_retrying(name, runner, events, args.batch)
            rates[name].append(rate)
            cpus[name].append(cpu)
    print(f"N={args.n} payload≈{size:.0f} B batch={args.batch} runs={args.runs} (median msg/s)")
    print(f"{'contender':50} {'median/s':>10} {'min/s':>10} {'max/s':>10} {'CPU us/msg':>11}")
    for name, values in rates.items():
        med, lo, hi = statistics.median(values), min(values), max(values)
        cpu = statistics.median(cpus[name])
        print(f"{name:50} {med:10.0f} {lo:10.0f} {hi:10.0f} {cpu:11.1f}")
    tether = statistics.median(rates["tether JetStreamSink"])
    peer = statistics.median(rates["nats-py publish_async"])
    print(
        json.dumps(
            {
                "bench": "sink_jetstream",
                "tether_per_s": round(tether),
                "peer": "nats-py publish_async",
                "peer_per_s": round(peer),
                "ratio": round(tether / peer, 2),
                "n": args.n,
                "batch": args.batch,
                "runs": args.runs,
                "tether_cpu_us": round(statistics.median(cpus["tether JetStreamSink"]), 1),
                "peer_cpu_us": round(statistics.median(cpus["nats-py publish_async"]), 1),
            }
        )
    )


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        uvloop.run(main())
