"""Relay latency: commit -> JetStream consumer receipt under an open-loop producer.

    .venv/bin/python benchmarks/relay_latency.py [--rate 1000] [--events 20000]

An open-loop producer (main process) starts one single-event transaction (``add_event`` on
asyncpg, then COMMIT) every 1/rate seconds, scheduled by absolute time: event i is due at
``t0 + i/rate`` whatever happened to event i-1, so a slow relay or database cannot slow the
offered load down (no coordinated omission). Tether's relay runs in its own process(es) and a
JetStream push consumer in another; all stamp with the same wall clock.

Per event the producer records when it was due, when its transaction started and when COMMIT
returned; the consumer records when the message arrived. They are joined by event id
(= ``Nats-Msg-Id``) afterwards. Reported:

* ``commit -> receipt``: arrival minus the moment COMMIT returned to the producer. This is the
  relay's latency, the target (p99 <= 20 ms). The commit time is taken after COMMIT returns
  rather than stamped into the payload before it, because a pre-commit stamp would charge the
  commit itself (and any producer stall before it) to the relay; keeping the stamps on the
  producer side and joining by id gets the exact moment without writing it into the event.
* ``due -> receipt``: arrival minus the scheduled time: what a user of the system sees,
  including the producer's own lateness and the transaction.
* ``producer lateness``: transaction start (a pooled connection in hand) minus scheduled
  time: how far the machine (not the relay) lags; on 2 shared cores it is part of every tail
  figure. ``--producers`` (32) connections keep the load open-loop while commits are slow.

Wake-up modes compared in one run, each a fresh stream and a drained table:

* ``poll``         producers don't notify; the relay polls every ``poll_interval`` (5 ms).
* ``notify``       ``add_event(..., notify=True)``: one NOTIFY per transaction, the relay
                   LISTENs and still polls every 5 ms as a fallback.
* ``notify_only``  NOTIFY with the polling fallback slowed to 250 ms, to see NOTIFY alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

MODES: dict[str, dict[str, Any]] = {
    "poll": {"notify": False, "relay": {"poll_interval": 0.005}},
    "notify": {"notify": True, "relay": {"poll_interval": 0.005}},
    "notify_only": {
        "notify": True,
        "relay": {"poll_interval": 0.25, "idle_poll_interval": 0.25},
    },
}


@dataclass
class Settings:
    rate: float = 1000.0
    events: int = 20_000
    warmup: int = 1000
    modes: tuple[str, ...] = ("poll", "notify", "notify_only")
    relay_procs: int = 1
    batch: int = 500
    producers: int = 32
    rounds: int = 1


# --------------------------------------------------------------------------- child processes


def _relay_child(
    dsn: str, subject: str, relay_opts: dict[str, Any], batch: int, ready: Any, stop: Any
) -> None:
    common.use_uvloop()

    async def main() -> None:
        from tether.outbox.relay import Relay, RelayConfig
        from tether.outbox.store_pg import PostgresOutboxStore
        from tether.sinks.jetstream import JetStreamSink

        config = RelayConfig(batch_size=batch, **relay_opts)
        store = await PostgresOutboxStore.connect(dsn, connections=config.concurrency)
        sink = await JetStreamSink.connect(common.NATS_URL, subject=subject)
        relay = Relay(store, [sink], config=config)
        stop_event = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            stop_event.set()

        watcher = asyncio.create_task(watch())
        ready.put("relay")
        await relay.run(stop_event)
        await watcher
        await sink.close()
        await store.close()

    asyncio.run(main())


def _consumer_child(
    stream: str, subject: str, expected: int, ready: Any, out: Any, stop: Any
) -> None:
    common.use_uvloop()

    async def main() -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await common.nats_connect()
        js = nc.jetstream()
        received: list[tuple[str, float]] = []
        done = asyncio.Event()
        clock = time.time

        async def on_msg(msg: Any) -> None:
            received.append((msg.headers["Nats-Msg-Id"], clock()))
            if len(received) >= expected:
                done.set()

        await js.subscribe(
            subject,
            stream=stream,
            cb=on_msg,
            manual_ack=True,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.NEW),
            pending_msgs_limit=1_000_000,
        )
        await nc.flush()
        ready.put("consumer")
        while not done.is_set() and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)
        out.put(received)
        await nc.close()

    asyncio.run(main())


# --------------------------------------------------------------------------- producer


@dataclass
class Sent:
    id: str
    due: float
    start: float
    committed: float


async def produce(dsn: str, settings: Settings, notify: bool) -> list[Sent]:
    from tether.outbox import add_event

    total = settings.warmup + settings.events
    pool = await asyncpg.create_pool(dsn, min_size=settings.producers, max_size=settings.producers)
    sent: list[Sent] = []
    clock = time.time
    interval = 1.0 / settings.rate

    async def one(i: int, due: float) -> None:
        eid = uuid.uuid4()
        async with pool.acquire() as conn:
            start = clock()  # lateness counts the wait for a free connection too
            async with conn.transaction():
                await add_event(
                    conn,
                    "OrderPlaced",
                    common.make_payload(i, str(eid)),
                    aggregate_type="order",
                    aggregate_id=str(i),
                    id=eid,
                    notify=notify,
                )
            committed = clock()
        sent.append(Sent(str(eid), due, start, committed))

    tasks: set[asyncio.Task[None]] = set()
    t0 = clock() + 0.05
    try:
        for i in range(total):
            due = t0 + i * interval
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        await pool.close()
    sent.sort(key=lambda s: s.due)
    return sent[settings.warmup :]


# --------------------------------------------------------------------------- one mode


@dataclass
class ModeResult:
    mode: str
    round: int
    events: int
    received: int
    missing: int
    commit_p50_ms: float
    commit_p95_ms: float
    commit_p99_ms: float
    commit_max_ms: float
    due_p50_ms: float
    due_p99_ms: float
    late_p50_ms: float
    late_p99_ms: float
    achieved_rate: float


def _ms(values: list[float], p: float) -> float:
    return round(common.pct(values, p) * 1000, 2)


async def run_mode(mode: str, settings: Settings, rnd: int, tag: str) -> ModeResult:
    from tether.store.postgres.ddl import full_schema_sql

    spec = MODES[mode]
    stream = f"LAT_{tag}_{mode}_{rnd}".upper()
    subject = f"lat.{tag}.{mode}{rnd}.orders"
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    stop = ctx.Event()
    loop = asyncio.get_running_loop()
    total = settings.warmup + settings.events
    async with common.temp_database("tether_bench_lat") as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(full_schema_sql())
        await conn.close()
        await common.create_stream(stream, [subject])
        procs = [
            ctx.Process(
                target=_consumer_child, args=(stream, subject, total, ready, out, stop), daemon=True
            )
        ]
        procs += [
            ctx.Process(
                target=_relay_child,
                args=(dsn, subject, spec["relay"], settings.batch, ready, stop),
                daemon=True,
            )
            for _ in range(settings.relay_procs)
        ]
        try:
            for p in procs:
                p.start()
            for _ in procs:
                await loop.run_in_executor(None, ready.get, True, 60)
            await asyncio.sleep(0.5)
            print(
                f"  [{mode} r{rnd}] producing {total} events at {settings.rate:g}/s "
                f"({common.load_note()})",
                flush=True,
            )
            t_start = time.time()
            sent = await produce(dsn, settings, spec["notify"])
            t_prod = time.time() - t_start
            received = await loop.run_in_executor(None, out.get, True, 120)
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=20)
                if p.is_alive():
                    p.kill()
            await common.delete_stream(stream)
    arrived = dict(received)
    commit = sorted(arrived[s.id] - s.committed for s in sent if s.id in arrived)
    due = sorted(arrived[s.id] - s.due for s in sent if s.id in arrived)
    late = sorted(s.start - s.due for s in sent)
    res = ModeResult(
        mode=mode,
        round=rnd,
        events=len(sent),
        received=len(commit),
        missing=len(sent) - len(commit),
        commit_p50_ms=_ms(commit, 50),
        commit_p95_ms=_ms(commit, 95),
        commit_p99_ms=_ms(commit, 99),
        commit_max_ms=_ms(commit, 100),
        due_p50_ms=_ms(due, 50),
        due_p99_ms=_ms(due, 99),
        late_p50_ms=_ms(late, 50),
        late_p99_ms=_ms(late, 99),
        achieved_rate=round(total / t_prod),
    )
    print(
        f"  [{mode} r{rnd}] commit->receipt p50 {res.commit_p50_ms} p95 {res.commit_p95_ms} "
        f"p99 {res.commit_p99_ms} ms; producer lateness p99 {res.late_p99_ms} ms; "
        f"missing {res.missing}",
        flush=True,
    )
    return res


async def main(settings: Settings) -> None:
    tag = common.run_id()
    results: list[ModeResult] = []
    for rnd in range(1, settings.rounds + 1):
        for mode in settings.modes:
            try:
                results.append(await run_mode(mode, settings, rnd, tag))
            except Exception as exc:
                print(f"  [{mode} r{rnd}] FAILED: {exc!r}", file=sys.stderr, flush=True)
    report(results, settings)


def report(results: list[ModeResult], settings: Settings) -> None:
    rows = [
        [
            r.mode,
            r.round,
            r.events,
            r.commit_p50_ms,
            r.commit_p95_ms,
            r.commit_p99_ms,
            r.commit_max_ms,
            r.due_p50_ms,
            r.due_p99_ms,
            r.late_p50_ms,
            r.late_p99_ms,
            r.missing,
        ]
        for r in results
    ]
    common.print_table(
        f"Commit -> JetStream consumer latency (ms), open loop at {settings.rate:g} events/s",
        [
            "mode",
            "round",
            "events",
            "p50",
            "p95",
            "p99",
            "max",
            "due p50",
            "due p99",
            "late p50",
            "late p99",
            "missing",
        ],
        rows,
    )
    best: dict[str, dict[str, float]] = {}
    for mode in settings.modes:
        rs = [r for r in results if r.mode == mode]
        if rs:
            best[mode] = {
                "p50_ms": round(common.median(r.commit_p50_ms for r in rs), 2),
                "p95_ms": round(common.median(r.commit_p95_ms for r in rs), 2),
                "p99_ms": round(common.median(r.commit_p99_ms for r in rs), 2),
                "late_p99_ms": round(common.median(r.late_p99_ms for r in rs), 2),
            }
    default = best.get("notify") or next(iter(best.values()), {})
    common.emit_json(
        {
            "bench": "relay_latency",
            "rate": settings.rate,
            "events": settings.events,
            "tether_p50_ms": default.get("p50_ms"),
            "tether_p95_ms": default.get("p95_ms"),
            "tether_p99_ms": default.get("p99_ms"),
            "target_p99_ms": 20,
            "modes": best,
            "all_received": all(r.missing == 0 for r in results),
            "runs": [asdict(r) for r in results],
            "settings": asdict(settings),
            **common.environment(),
        }
    )


def parse_args() -> Settings:
    s = Settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=s.rate)
    p.add_argument("--events", type=int, default=s.events)
    p.add_argument("--warmup", type=int, default=s.warmup)
    p.add_argument("--modes", default=",".join(s.modes))
    p.add_argument("--relay-procs", type=int, default=s.relay_procs)
    p.add_argument("--batch", type=int, default=s.batch)
    p.add_argument("--producers", type=int, default=s.producers)
    p.add_argument("--rounds", type=int, default=s.rounds)
    a = p.parse_args()
    return Settings(
        rate=a.rate,
        events=a.events,
        warmup=a.warmup,
        modes=tuple(a.modes.split(",")),
        relay_procs=a.relay_procs,
        batch=a.batch,
        producers=a.producers,
        rounds=a.rounds,
    )


if __name__ == "__main__":
    common.use_uvloop()
    asyncio.run(main(parse_args()))
