"""Relay drain: a pre-loaded backlog, Postgres -> NATS JetStream, three contenders in one run.

    .venv/bin/python benchmarks/relay_drain.py [--events 200000] [--rounds 3]

Contenders (each drains its own table into its own fresh stream, one after the other):

* ``tether``      Tether's relay (``tether.outbox.relay``) with its JetStream sink, in
                  ``--tether-procs`` processes.
* ``faststream``  faststream-outbox 0.19 relaying to faststream's NatsBroker JetStream
                  publisher (the documented ``@nats_publisher @outbox.subscriber`` stack).
* ``bare``        a bare asyncpg + nats-py loop written here, the ceiling, in the
                  fastest known design: one transaction per batch (SELECT ... FOR UPDATE
                  SKIP LOCKED,
                  core ``nc.publish`` of each event to the stream subject with a reply inbox,
                  wait for every JetStream ack, DELETE, COMMIT); ``--bare-procs`` x
                  ``--bare-tasks``.
* ``bare_raw``    the same loop, but the batch's HPUB frames are built by hand and handed to
                  nats-py's outgoing buffer in one piece (private ``_send_command``): what a
                  relay gains by skipping nats-py's per-message publish path.
* ``bare_tt``     (opt-in) ``bare_raw`` draining Tether's own table (its indexes, its row
                  width) in seq order without key order, with only a ``Nats-Msg-Id`` header:
                  separates what Tether's schema costs from what its claim and Python cost.

Each contender gets the same payloads (~314 bytes of JSON), the same Postgres and NATS, and a
settled table (VACUUM ANALYZE + CHECKPOINT after loading). The clock starts when every worker
process is connected and is told to go, and stops when the stream holds N messages and the
table holds no live rows. Afterwards the stream is read back: it must hold exactly N distinct
``Nats-Msg-Id`` values, equal to the loaded event ids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

# --------------------------------------------------------------------------- configuration


@dataclass
class Settings:
    events: int = 200_000
    rounds: int = 1
    contenders: tuple[str, ...] = ("tether", "faststream", "bare", "bare_raw")
    tether_procs: int = 2
    keys: int = 0  # partition keys the backlog is spread over; 0: every event its own key
    tether_batch: int = 1000
    tether_extra: dict[str, Any] = field(default_factory=dict)
    fs_procs: int = 2
    fs_workers: int = 16
    fs_fetch: int = 1000
    fs_flush: int = 100
    bare_procs: int = 2
    bare_tasks: int = 2
    bare_batch: int = 1000
    timeout: float = 600.0
    profile: str = ""  # "", "py-spy" or "pyinstrument": profile Tether's relay processes
    out_dir: str = "benchmarks/out"


@dataclass
class Target:
    """Where one contender reads and writes in one round."""

    contender: str
    dsn: str
    stream: str
    subject: str
    table: str
    live_sql: str


@dataclass
class Result:
    contender: str
    round: int
    procs: int
    events: int
    seconds: float
    per_s: float
    stream_msgs: int
    distinct_ids: int
    ids_match: bool
    cpu_us_per_event: float = 0.0  # relay processes' own CPU (user+sys), all processes summed


# --------------------------------------------------------------------------- backlog loaders


def _event_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


BARE_DDL = """
CREATE TABLE bare_outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         uuid        NOT NULL,
    topic      text        NOT NULL,
    type       text        NOT NULL,
    payload    json        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


async def load_bare(dsn: str, n: int) -> set[str]:
    ids = _event_ids(n)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(BARE_DDL)
        records = [
            (
                uuid.UUID(eid),
                "order",
                "OrderPlaced",
                orjson.dumps(common.make_payload(i, eid)).decode(),
            )
            for i, eid in enumerate(ids)
        ]
        await conn.copy_records_to_table(
            "bare_outbox", records=records, columns=["id", "topic", "type", "payload"]
        )
    finally:
        await conn.close()
    return set(ids)


FS_TABLE = "fs_outbox"
FS_QUEUE = "orders"


def _fs_table() -> Any:
    from faststream_outbox import make_outbox_table
    from sqlalchemy import MetaData

    return make_outbox_table(MetaData(), table_name=FS_TABLE)


async def load_faststream(dsn: str, n: int) -> set[str]:
    """Create faststream-outbox's table (plus its recommended autovacuum DDL) and load it
    through its own producer API, ``broker.publish_batch`` in transactions of 1000."""
    from faststream_outbox import OutboxBroker, outbox_autovacuum_ddl
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    ids = _event_ids(n)
    table = _fs_table()
    engine = create_async_engine(common.sqlalchemy_url(dsn))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(text(outbox_autovacuum_ddl(FS_TABLE)))
        broker = OutboxBroker(engine, outbox_table=table, logger=None)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        for start in range(0, n, 1000):
            bodies = [common.make_payload(i, ids[i]) for i in range(start, min(n, start + 1000))]
            async with sessions() as session, session.begin():
                await broker.publish_batch(*bodies, queue=FS_QUEUE, session=session)
    finally:
        await engine.dispose()
    return set(ids)


async def load_tether(dsn: str, n: int, keys: int = 0) -> set[str]:
    """Create Tether's schema and load it with ``add_event`` in transactions of 1000 events,
    spread over ``keys`` aggregates (0: each event its own)."""
    from tether.outbox import add_event
    from tether.store.postgres.ddl import full_schema_sql

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(full_schema_sql())
    finally:
        await conn.close()

    ids: list[str] = []

    async def loader(part: range) -> None:
        c = await asyncpg.connect(dsn)
        try:
            for start in range(part.start, part.stop, 1000):
                async with c.transaction():
                    for i in range(start, min(part.stop, start + 1000)):
                        eid = uuid.uuid4()
                        ref = await add_event(
                            c,
                            "OrderPlaced",
                            common.make_payload(i, str(eid)),
                            aggregate_type="order",
                            aggregate_id=str(i % keys if keys else 1_000_000 + i),
                            id=eid,
                        )
                        ids.append(str(ref.id))
        finally:
            await c.close()

    step = (n + 3) // 4
    await asyncio.gather(*(loader(range(s, min(n, s + step))) for s in range(0, n, step)))
    return set(ids)


# --------------------------------------------------------------------------- worker processes
# Each worker runs in its own spawned process: it connects, reports ready, waits for "go",
# drains until "stop", then reports what it did.


def _wait_event(ev: Any) -> asyncio.Future[bool]:
    return asyncio.get_running_loop().run_in_executor(None, ev.wait)


async def _until_stop(stop: Any) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.02)


async def bare_worker(
    target: Target, settings: Settings, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    nc = await common.nats_connect()
    inbox = nc.new_inbox()
    waiting: dict[str, list[Any]] = {}  # token -> [remaining acks, future, errors]

    async def on_ack(msg: Any) -> None:
        entry = waiting.get(msg.subject)
        if entry is None:
            return
        if b'"error"' in msg.data:
            entry[2] += 1
        entry[0] -= 1
        if entry[0] == 0 and not entry[1].done():
            entry[1].set_result(None)

    await nc.subscribe(f"{inbox}.*", cb=on_ack, pending_msgs_limit=1_000_000)
    await nc.flush()
    subject = target.subject.encode()
    raw = target.contender in ("bare_raw", "bare_tt")
    counter = 0
    done = 0
    cpu0 = 0.0

    async def run_task(task_no: int) -> None:
        nonlocal counter, done, cpu0
        conn = await asyncpg.connect(target.dsn)
        try:
            if target.contender == "bare_tt":
                # Tether's own table (its indexes, its row width), drained without key order.
                pick = await conn.prepare(
                    "SELECT seq, id::text, payload::text FROM tether_outbox WHERE state = "
                    "'pending' ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED"
                )
                finish = await conn.prepare(
                    "DELETE FROM tether_outbox WHERE seq = ANY($1::bigint[])"
                )
            else:
                pick = await conn.prepare(
                    "SELECT seq, id::text, payload::text FROM bare_outbox "
                    "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED"
                )
                finish = await conn.prepare("DELETE FROM bare_outbox WHERE seq = ANY($1::bigint[])")
            ready.put(("ready", os.getpid(), task_no))
            await _wait_event(go)
            if task_no == 0:
                cpu0 = time.process_time()
            while not stop.is_set():
                async with conn.transaction():
                    rows = await pick.fetch(settings.bare_batch)
                    if not rows:
                        await asyncio.sleep(0.005)
                        continue
                    counter += 1
                    token = f"{inbox}.{counter}"
                    fut = asyncio.get_running_loop().create_future()
                    waiting[token] = [len(rows), fut, 0]
                    if raw:
                        await _publish_raw(nc, subject, token.encode(), rows)
                    else:
                        for eid, payload in ((r[1], r[2]) for r in rows):
                            await nc.publish(
                                target.subject,
                                payload.encode(),
                                reply=token,
                                headers={"Nats-Msg-Id": eid},
                            )
                    await asyncio.wait_for(fut, 30)
                    entry = waiting.pop(token)
                    if entry[2]:
                        raise RuntimeError(f"{entry[2]} JetStream publish errors in one batch")
                    await finish.fetch([r[0] for r in rows])
                done += len(rows)
        finally:
            await conn.close()

    await asyncio.gather(*(run_task(t) for t in range(settings.bare_tasks)))
    cpu = time.process_time() - cpu0
    await nc.close()
    return {"published": done, "cpu_s": cpu}


async def _publish_raw(nc: Any, subject: bytes, reply: bytes, rows: list[Any]) -> None:
    """Write a whole batch of HPUB frames to nats-py's outgoing buffer in one piece."""
    frames = bytearray()
    for row in rows:
        eid, payload = row[1], row[2]
        hdr = b"NATS/1.0\r\nNats-Msg-Id: " + eid.encode() + b"\r\n\r\n"
        body = payload.encode()
        frames += b"HPUB %b %b %d %d\r\n%b%b\r\n" % (
            subject,
            reply,
            len(hdr),
            len(hdr) + len(body),
            hdr,
            body,
        )
    await nc._send_command(bytes(frames))
    await nc._flush_pending()


async def faststream_worker(
    target: Target, settings: Settings, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    """faststream-outbox driven the documented way: a NATS JetStream publisher decorator
    stacked on an outbox subscriber; the handler returns the body with ``Nats-Msg-Id``."""
    from faststream.nats import JStream, NatsBroker, NatsResponse
    from faststream_outbox import OutboxBroker
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        common.sqlalchemy_url(target.dsn), pool_size=settings.fs_workers + 4, max_overflow=4
    )
    outbox = OutboxBroker(engine, outbox_table=_fs_table(), logger=None)
    nats_broker = NatsBroker(common.NATS_URL, logger=None)
    to_stream = nats_broker.publisher(target.subject, stream=JStream(target.stream, declare=False))

    @to_stream
    @outbox.subscriber(
        FS_QUEUE,
        max_workers=settings.fs_workers,
        fetch_batch_size=settings.fs_fetch,
        terminal_flush_batch_size=settings.fs_flush,
        min_fetch_interval=0.05,
        max_fetch_interval=1.0,
        lease_ttl_seconds=120.0,
    )
    async def relay(body: dict[str, Any]) -> NatsResponse:
        return NatsResponse(body, headers={"Nats-Msg-Id": body["event_id"]})

    await nats_broker.start()
    ready.put(("ready", os.getpid(), 0))
    await _wait_event(go)
    cpu0 = time.process_time()
    await outbox.start()
    await _until_stop(stop)
    cpu = time.process_time() - cpu0
    await outbox.stop()
    await nats_broker.stop()
    await engine.dispose()
    return {"cpu_s": cpu}


async def tether_worker(
    target: Target, settings: Settings, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    """Tether's relay as its CLI would run it: a Postgres store, the JetStream sink, a Relay."""
    from tether.outbox.relay import Relay, RelayConfig
    from tether.outbox.store_pg import PostgresOutboxStore
    from tether.sinks.jetstream import JetStreamSink

    extra = dict(settings.tether_extra)
    keep = bool(extra.pop("keep_published", False))
    config = RelayConfig(batch_size=settings.tether_batch, **extra)
    store = await PostgresOutboxStore.connect(
        target.dsn, connections=config.concurrency, keep_published=keep
    )
    sink = await JetStreamSink.connect(common.NATS_URL, subject=target.subject)
    relay = Relay(store, [sink], config=config)
    ready.put(("ready", os.getpid(), 0))
    await _wait_event(go)
    cpu0 = time.process_time()
    stop_event = asyncio.Event()

    async def watch() -> None:
        await _until_stop(stop)
        stop_event.set()

    watcher = asyncio.create_task(watch())
    await relay.run(stop_event)
    await watcher
    cpu = time.process_time() - cpu0
    await sink.close()
    await store.close()
    return {
        "cpu_s": cpu,
        "published": relay.stats.published,
        "batches": relay.stats.batches,
        "loop_errors": relay.stats.loop_errors,
        "last_error": relay.stats.last_error,
    }


WORKERS: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "bare": bare_worker,
    "bare_raw": bare_worker,
    "bare_tt": bare_worker,
    "faststream": faststream_worker,
    "tether": tether_worker,
}


def _child(
    contender: str, target: Target, settings: Settings, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    common.use_uvloop()
    try:
        info = asyncio.run(WORKERS[contender](target, settings, ready, go, stop))
        out.put(("ok", os.getpid(), info))
    except BaseException as exc:  # report, don't hang the parent
        out.put(("error", os.getpid(), repr(exc)))
        raise


def _procs(contender: str, settings: Settings) -> int:
    procs = {k: settings.bare_procs for k in ("bare", "bare_raw", "bare_tt")}
    return {**procs, "faststream": settings.fs_procs}.get(contender, settings.tether_procs)


def _readies(contender: str, settings: Settings) -> int:
    per = settings.bare_tasks if contender.startswith("bare") else 1
    return _procs(contender, settings) * per


# --------------------------------------------------------------------------- one drain


async def _monitor(target: Target, n: int, timeout: float) -> float:
    """Return the wall time at which the stream holds n messages and the table no live rows."""
    nc = await common.nats_connect()
    conn = await asyncpg.connect(target.dsn)
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    try:
        js = nc.jetstream()
        while True:
            try:
                count = await common.stream_count(js, target.stream)
            except Exception:  # NATS restarting under someone's chaos test: keep watching
                if time.monotonic() - last_change > 60:
                    raise
                await asyncio.sleep(0.1)
                continue
            if count >= n and await conn.fetchval(target.live_sql) == 0:
                return common.now()
            if count != last:
                last, last_change = count, time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - last_change > 60:
                raise TimeoutError(f"{target.contender}: stuck at {count}/{n} messages")
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
        await nc.close()


def _start_profiler(pids: list[int], settings: Settings, tag: str) -> list[Any]:
    import subprocess

    if settings.profile != "py-spy":
        return []
    Path(settings.out_dir).mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in pids:
        out = Path(settings.out_dir) / f"{tag}_{pid}.collapsed.txt"
        py_spy = str(Path(sys.executable).parent / "py-spy")
        procs.append(
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(1.0)
    return procs


def _stop_profiler(procs: list[Any]) -> None:
    import signal

    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        with contextlib.suppress(Exception):
            p.wait(timeout=30)


async def drain(target: Target, settings: Settings, n: int) -> tuple[float, list[Any]]:
    profile = target.contender == "tether"
    return await common.run_workers(
        _child,
        (target.contender, target, settings),
        _procs(target.contender, settings),
        _readies(target.contender, settings),
        lambda: _monitor(target, n, settings.timeout),
        on_ready=lambda pids: _start_profiler(pids, settings, target.stream) if profile else [],
        on_stop=_stop_profiler,
    )


LOADERS = {
    "bare": load_bare,
    "bare_raw": load_bare,
    "bare_tt": load_tether,
    "faststream": load_faststream,
    "tether": load_tether,
}
TABLES = {
    "bare": ("bare_outbox", "SELECT count(*) FROM bare_outbox"),
    "bare_raw": ("bare_outbox", "SELECT count(*) FROM bare_outbox"),
    "faststream": (FS_TABLE, f"SELECT count(*) FROM {FS_TABLE}"),
    "tether": (
        "tether_outbox",
        "SELECT count(*) FROM tether_outbox WHERE state IN ('pending', 'claimed')",
    ),
}
TABLES["bare_tt"] = TABLES["tether"]


async def one_round(contender: str, settings: Settings, rnd: int, tag: str) -> Result:
    """Run one drain; repeat it (up to 3 tries) if NATS or Postgres restarted meanwhile."""
    for attempt in range(1, 4):
        before = await common.services_fingerprint()
        try:
            res = await _one_round(contender, settings, rnd, f"{tag}{attempt}")
        except Exception as exc:
            if await common.services_fingerprint() == before:
                raise
            print(
                f"  [{contender} r{rnd}] NATS/Postgres restarted during the run ({exc!r}); "
                "repeating",
                flush=True,
            )
            continue
        if await common.services_fingerprint() == before:
            return res
        print(
            f"  [{contender} r{rnd}] NATS/Postgres restarted during the run; repeating", flush=True
        )
    raise common.ServicesRestarted(f"{contender}: services kept restarting")


async def _one_round(contender: str, settings: Settings, rnd: int, tag: str) -> Result:
    n = settings.events
    stream = f"BENCH_{tag}_{contender}_{rnd}".upper()
    subject = f"bench.{tag}.{contender}{rnd}.orders"
    async with common.temp_database() as dsn:
        table, live_sql = TABLES[contender]
        target = Target(contender, dsn, stream, subject, table, live_sql)
        t = time.monotonic()
        if contender == "tether":
            expected = await load_tether(dsn, n, settings.keys)
        else:
            expected = await LOADERS[contender](dsn, n)
        await common.settle_table(dsn, table)
        load_s = time.monotonic() - t
        await common.create_stream(stream, [subject])
        try:
            print(
                f"  [{contender} r{rnd}] loaded {n} in {load_s:.1f}s; draining "
                f"({common.load_note()})",
                flush=True,
            )
            seconds, reports = await drain(target, settings, n)
            read, ids = await common.collect_msg_ids(stream, subject)
        finally:
            await common.delete_stream(stream)
    res = Result(
        contender=contender,
        round=rnd,
        procs=_procs(contender, settings),
        events=n,
        seconds=round(seconds, 3),
        per_s=round(n / seconds),
        stream_msgs=read,
        distinct_ids=len(ids),
        ids_match=ids == expected,
        cpu_us_per_event=round(
            sum(r[2].get("cpu_s", 0.0) for r in reports if r[0] == "ok") / n * 1e6, 1
        ),
    )
    print(
        f"  [{contender} r{rnd}] {res.per_s} events/s in {res.seconds}s, relay CPU "
        f"{res.cpu_us_per_event} us/event; stream {read} msgs, "
        f"{len(ids)} distinct ids, ids match: {res.ids_match}",
        flush=True,
    )
    return res


async def main(settings: Settings) -> None:
    tag = common.run_id()
    results: list[Result] = []
    for rnd in range(1, settings.rounds + 1):
        for contender in settings.contenders:
            try:
                results.append(await one_round(contender, settings, rnd, tag))
            except Exception as exc:
                print(f"  [{contender} r{rnd}] FAILED: {exc!r}", file=sys.stderr, flush=True)
    report(results, settings)


def report(results: list[Result], settings: Settings) -> None:
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.contender, []).append(r)
    med = {c: common.median(r.per_s for r in rs) for c, rs in by.items()}
    rows = []
    for c, rs in by.items():
        ok = all(r.ids_match and r.stream_msgs == r.events for r in rs)
        rows.append(
            [
                c,
                rs[0].procs,
                settings.events,
                " / ".join(str(r.per_s) for r in rs),
                round(med[c]),
                round(common.median(r.cpu_us_per_event for r in rs), 1),
                "yes" if ok else "NO",
            ]
        )
    common.print_table(
        f"Relay drain, {settings.events} events of ~{common.PAYLOAD_BYTES} B, "
        "Postgres -> JetStream",
        [
            "contender",
            "procs",
            "events",
            "events/s per round",
            "median events/s",
            "relay CPU us/event",
            "all ids, once",
        ],
        rows,
    )
    t, f, b, raw = med.get("tether"), med.get("faststream"), med.get("bare"), med.get("bare_raw")
    record: dict[str, Any] = {
        "bench": "relay_drain",
        "events": settings.events,
        "rounds": settings.rounds,
        "tether_per_s": round(t) if t else None,
        "tether_procs": settings.tether_procs,
        "peer": "faststream-outbox",
        "peer_per_s": round(f) if f else None,
        "ratio": round(t / f, 2) if t and f else None,
        "bare_per_s": round(b) if b else None,
        "ratio_vs_bare": round(t / b, 2) if t and b else None,
        "bare_raw_per_s": round(raw) if raw else None,
        "ratio_vs_bare_raw": round(t / raw, 2) if t and raw else None,
        "median_per_s": {c: round(v) for c, v in med.items()},
        "relay_cpu_us_per_event": {
            c: round(common.median(r.cpu_us_per_event for r in rs), 1) for c, rs in by.items()
        },
        "all_delivered_once": all(r.ids_match and r.stream_msgs == r.events for r in results),
        "runs": [asdict(r) for r in results],
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("out_dir",)},
        **common.environment(),
    }
    common.emit_json(record)


def parse_args() -> Settings:
    s = Settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=s.events)
    p.add_argument("--rounds", type=int, default=s.rounds)
    p.add_argument("--contenders", default=",".join(s.contenders))
    p.add_argument("--tether-procs", type=int, default=s.tether_procs)
    p.add_argument("--tether-batch", type=int, default=s.tether_batch)
    p.add_argument(
        "--tether-opt",
        action="append",
        default=[],
        help="extra RelayConfig field, KEY=VALUE (repeatable)",
    )
    p.add_argument("--fs-procs", type=int, default=s.fs_procs)
    p.add_argument("--fs-workers", type=int, default=s.fs_workers)
    p.add_argument("--fs-fetch", type=int, default=s.fs_fetch)
    p.add_argument("--fs-flush", type=int, default=s.fs_flush)
    p.add_argument("--bare-procs", type=int, default=s.bare_procs)
    p.add_argument("--bare-tasks", type=int, default=s.bare_tasks)
    p.add_argument("--bare-batch", type=int, default=s.bare_batch)
    p.add_argument("--timeout", type=float, default=s.timeout)
    p.add_argument("--profile", choices=["", "py-spy"], default="")
    a = p.parse_args()
    extra: dict[str, Any] = {}
    for kv in a.tether_opt:
        key, _, value = kv.partition("=")
        extra[key] = orjson.loads(value) if value[:1] in '0123456789-[{tf"n' else value
    return Settings(
        events=a.events,
        rounds=a.rounds,
        contenders=tuple(a.contenders.split(",")),
        tether_procs=a.tether_procs,
        tether_batch=a.tether_batch,
        tether_extra=extra,
        fs_procs=a.fs_procs,
        fs_workers=a.fs_workers,
        fs_fetch=a.fs_fetch,
        fs_flush=a.fs_flush,
        bare_procs=a.bare_procs,
        bare_tasks=a.bare_tasks,
        bare_batch=a.bare_batch,
        timeout=a.timeout,
        profile=a.profile,
    )


if __name__ == "__main__":
    common.use_uvloop()
    asyncio.run(main(parse_args()))
