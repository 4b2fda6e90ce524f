"""Relay drain to every broker: a 200k backlog, Postgres -> RabbitMQ, Redis Streams, JetStream.

    .venv/bin/python benchmarks/relay_brokers.py [--events 200000]
        [--brokers rabbitmq,redis,jetstream] [--contenders tether,bare,faststream]

For each broker, in one run and one after the other, each contender drains its own copy of a
pre-loaded backlog (every copy cloned from one template database, so all start alike):

* ``tether``      Tether's relay with the broker's sink (``RabbitMQSink``, ``RedisStreamsSink``,
                  ``JetStreamSink``), in ``--tether-procs`` processes.
* ``bare``        a bare loop on the same broker, the ceiling: one transaction per batch
                  (SELECT ... FOR UPDATE SKIP LOCKED, publish, DELETE, COMMIT); RabbitMQ:
                  aio-pika, persistent messages with ``message_id`` on a confirming channel,
                  the batch's publishes gathered; Redis: redis-py, one pipeline of XADD
                  (``id``, ``data``) per batch; JetStream: ``relay_drain.py``'s bare loop.
* ``faststream``  faststream-outbox 0.19 relaying through faststream's RabbitBroker / RedisBroker
                  publisher (``@publisher @outbox.subscriber``, as ``relay_drain.py`` does for
                  NATS); for JetStream ``relay_drain.py``'s own faststream contender.

The clock starts when every worker is connected and told to go, and stops when the broker holds
N messages and the table no live rows. Afterwards every message is read back and the
``event_id`` in its payload collected: all N ids must be there (RabbitMQ may hold a repeat).
Ends with a table and one JSON line (``{"bench": "relay_brokers", ...}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import relay_drain as rd

AMQP_URL = os.environ.get("TETHER_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TETHER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ROUTING_KEY = "order"  # the topic of every loaded event
EVENT_ID = re.compile(rb'"event_id":\s*"([0-9a-f-]{36})"')


@dataclass
class Options:
    brokers: tuple[str, ...] = ("rabbitmq", "redis", "jetstream")
    contenders: tuple[str, ...] = ("tether", "bare", "faststream")
    fs_events: int = 0
    """Backlog for faststream-outbox (0: the same): at its few hundred events/s a 200k drain
    takes minutes per broker; its rate does not depend on the depth of its backlog."""


@dataclass
class BrokerTarget:
    """Where one contender drains to: ``name`` is the exchange (its queue is ``name.all``) or
    the stream key."""

    broker: str
    contender: str
    dsn: str
    name: str
    live_sql: str


@dataclass
class Result:
    broker: str
    contender: str
    procs: int
    events: int
    seconds: float
    per_s: int
    messages: int
    distinct_ids: int
    ids_match: bool
    cpu_us_per_event: float


# --------------------------------------------------------------------------- workers


async def tether_worker(
    t: BrokerTarget, s: rd.Settings, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    from tether.outbox.relay import Relay, RelayConfig
    from tether.outbox.store_pg import PostgresOutboxStore
    from tether.sinks.base import Sink

    config = RelayConfig(batch_size=s.tether_batch, **s.tether_extra)
    store = await PostgresOutboxStore.connect(t.dsn, connections=config.concurrency)
    sink: Sink
    if t.broker == "rabbitmq":
        from tether.sinks.rabbitmq import RabbitMQSink

        sink = await RabbitMQSink.connect(AMQP_URL, exchange=t.name, routing_key="{topic}")
    else:
        from tether.sinks.redis_streams import RedisStreamsSink

        sink = await RedisStreamsSink.connect(REDIS_URL, stream=t.name)
    relay = Relay(store, [sink], config=config)
    ready.put(("ready", os.getpid(), 0))
    await rd._wait_event(go)
    cpu0 = time.process_time()
    stop_event = asyncio.Event()

    async def watch() -> None:
        await rd._until_stop(stop)
        stop_event.set()

    watcher = asyncio.create_task(watch())
    await relay.run(stop_event)
    await watcher
    cpu = time.process_time() - cpu0
    await sink.close()
    await store.close()
    return {"cpu_s": cpu, "published": relay.stats.published, "dead": relay.stats.dead}


PICK = (
    "SELECT seq, id::text, payload::text FROM bare_outbox "
    "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED"
)
FINISH = "DELETE FROM bare_outbox WHERE seq = ANY($1::bigint[])"


async def bare_worker(
    t: BrokerTarget, s: rd.Settings, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    """The ceiling: claim a batch, publish it with the plain driver, delete it, commit."""
    publish_batch, close = await _bare_publisher(t)
    done = 0
    cpu0 = 0.0

    async def run_task(task_no: int) -> None:
        nonlocal done, cpu0
        publish = await publish_batch()
        conn = await asyncpg.connect(t.dsn)
        try:
            pick, finish = await conn.prepare(PICK), await conn.prepare(FINISH)
            ready.put(("ready", os.getpid(), task_no))
            await rd._wait_event(go)
            if task_no == 0:
                cpu0 = time.process_time()
            while not stop.is_set():
                async with conn.transaction():
                    rows = await pick.fetch(s.bare_batch)
                    if not rows:
                        await asyncio.sleep(0.005)
                        continue
                    await publish(rows)
                    await finish.fetch([r[0] for r in rows])
                done += len(rows)
        finally:
            await conn.close()

    await asyncio.gather(*(run_task(n) for n in range(s.bare_tasks)))
    cpu = time.process_time() - cpu0
    await close()
    return {"published": done, "cpu_s": cpu}


Publish = Callable[[list[Any]], Coroutine[Any, Any, None]]


async def _bare_publisher(
    t: BrokerTarget,
) -> tuple[Callable[[], Coroutine[Any, Any, Publish]], Callable[[], Coroutine[Any, Any, None]]]:
    """(a factory of per-task batch publishers, close) for the target's broker."""
    if t.broker == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)

        async def rabbit_task() -> Publish:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(t.name, ensure=False)

            async def publish(rows: list[Any]) -> None:
                await asyncio.gather(
                    *(
                        exchange.publish(
                            aio_pika.Message(
                                r[2].encode(),
                                message_id=r[1],
                                content_type="application/json",
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            ),
                            routing_key=ROUTING_KEY,
                            mandatory=True,
                        )
                        for r in rows
                    )
                )

            return publish

        return rabbit_task, connection.close

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)

    async def redis_task() -> Publish:
        async def publish(rows: list[Any]) -> None:
            pipe = client.pipeline(transaction=False)
            for r in rows:
                pipe.xadd(t.name, {"id": r[1], "data": r[2]})
            await pipe.execute()

        return publish

    return redis_task, client.aclose


async def faststream_worker(
    t: BrokerTarget, s: rd.Settings, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    """faststream-outbox with a faststream RabbitMQ / Redis publisher stacked on it."""
    from faststream_outbox import OutboxBroker
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        common.sqlalchemy_url(t.dsn), pool_size=s.fs_workers + 4, max_overflow=4
    )
    outbox = OutboxBroker(engine, outbox_table=rd._fs_table(), logger=None)
    broker: Any
    if t.broker == "rabbitmq":
        from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitResponse

        broker = RabbitBroker(AMQP_URL, logger=None)
        exchange = RabbitExchange(t.name, type=ExchangeType.TOPIC, durable=True, declare=False)
        publisher = broker.publisher(exchange=exchange, routing_key=ROUTING_KEY, persist=True)

        def respond(body: dict[str, Any]) -> Any:
            return RabbitResponse(body, message_id=body["event_id"])
    else:
        from faststream.redis import RedisBroker

        broker = RedisBroker(REDIS_URL, logger=None)
        publisher = broker.publisher(stream=t.name)

        def respond(body: dict[str, Any]) -> Any:
            return body

    @publisher
    @outbox.subscriber(
        rd.FS_QUEUE,
        max_workers=s.fs_workers,
        fetch_batch_size=s.fs_fetch,
        terminal_flush_batch_size=s.fs_flush,
        min_fetch_interval=0.05,
        max_fetch_interval=1.0,
        lease_ttl_seconds=120.0,
    )
    async def relay(body: dict[str, Any]) -> Any:
        return respond(body)

    await broker.start()
    ready.put(("ready", os.getpid(), 0))
    await rd._wait_event(go)
    cpu0 = time.process_time()
    await outbox.start()
    await rd._until_stop(stop)
    cpu = time.process_time() - cpu0
    await outbox.stop()
    await broker.stop()
    await engine.dispose()
    return {"cpu_s": cpu}


WORKERS = {"tether": tether_worker, "bare": bare_worker, "faststream": faststream_worker}


def _child(t: BrokerTarget, s: rd.Settings, ready: Any, go: Any, stop: Any, out: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    common.use_uvloop()
    try:
        info = asyncio.run(WORKERS[t.contender](t, s, ready, go, stop))
        out.put(("ok", os.getpid(), info))
    except BaseException as exc:  # report, don't hang the parent
        out.put(("error", os.getpid(), repr(exc)))
        raise


# --------------------------------------------------------------------------- brokers


@contextlib.asynccontextmanager
async def message_counter(t: BrokerTarget) -> AsyncIterator[Callable[[], Coroutine[Any, Any, int]]]:
    """A function counting the messages the broker holds for the target, on one connection."""
    if t.broker == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        channel = await connection.channel()

        async def rabbit_count() -> int:
            queue = await channel.declare_queue(f"{t.name}.all", passive=True)
            return int(queue.declaration_result.message_count or 0)

        try:
            yield rabbit_count
        finally:
            await connection.close()
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)

    async def redis_count() -> int:
        return int(await client.xlen(t.name))

    try:
        yield redis_count
    finally:
        await client.aclose()


async def read_ids(t: BrokerTarget) -> tuple[int, set[str]]:
    """Every message the broker holds for the target (consumed), and the event ids in them."""
    ids: set[str] = set()
    read = 0
    if t.broker == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=5000)
            queue = await channel.declare_queue(f"{t.name}.all", passive=True)
            total = int(queue.declaration_result.message_count or 0)
            async with queue.iterator(no_ack=True) as messages:
                async for message in messages:
                    read += 1
                    ids.update(m.decode() for m in EVENT_ID.findall(message.body))
                    if read >= total:
                        break
        finally:
            await connection.close()
        return read, ids
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        last = "-"
        while entries := await client.xrange(t.name, min=last, count=10_000):
            if last != "-":
                entries = entries[1:]
                if not entries:
                    break
            for _, fields in entries:
                read += 1
                for value in fields.values():
                    ids.update(m.decode() for m in EVENT_ID.findall(value))
            last = entries[-1][0].decode()
    finally:
        await client.aclose()
    return read, ids


@contextlib.asynccontextmanager
async def broker_target(t: BrokerTarget) -> AsyncIterator[None]:
    """Declare the exchange and its durable queue (RabbitMQ) or clear the stream (Redis); remove
    them afterwards, with every de-dup key the sink wrote."""
    if t.broker == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(t.name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{t.name}.all", durable=True)
        await queue.bind(exchange, "#")
        try:
            yield
        finally:
            await queue.delete(if_unused=False, if_empty=False)
            await channel.exchange_delete(t.name)
            await connection.close()
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    await client.delete(t.name)
    try:
        yield
    finally:
        keys = [k async for k in client.scan_iter(match=f"{{{t.name}}}:dedup:*", count=10_000)]
        for n in range(0, len(keys), 10_000):
            await client.unlink(*keys[n : n + 10_000])
        await client.unlink(t.name)
        await client.aclose()


async def monitor(t: BrokerTarget, n: int, timeout: float) -> float:
    """The wall time at which the broker holds n messages and the table no live rows."""
    conn = await asyncpg.connect(t.dsn)
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    try:
        async with message_counter(t) as count_messages:
            while True:
                count = await count_messages()
                if count >= n and await conn.fetchval(t.live_sql) == 0:
                    return common.now()
                if count != last:
                    last, last_change = count, time.monotonic()
                if time.monotonic() > deadline or time.monotonic() - last_change > 60:
                    raise TimeoutError(f"{t.broker}/{t.contender}: stuck at {count}/{n} messages")
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


def _procs(contender: str, s: rd.Settings) -> int:
    return {"bare": s.bare_procs, "faststream": s.fs_procs}.get(contender, s.tether_procs)


async def drain(t: BrokerTarget, s: rd.Settings, n: int) -> tuple[float, list[Any]]:
    procs = _procs(t.contender, s)
    per_proc = s.bare_tasks if t.contender == "bare" else 1
    return await common.run_workers(
        _child, (t, s), procs, procs * per_proc, lambda: monitor(t, n, s.timeout)
    )


# --------------------------------------------------------------------------- backlogs


TEMPLATE_KIND = {"tether": "tether", "bare": "bare", "faststream": "faststream"}


async def make_template(kind: str, n: int) -> str:
    """A database holding the settled backlog of one kind; contenders drain clones of it."""
    dsn = await common.create_database("tether_bench_tmpl")
    loader = {"tether": rd.load_tether, "bare": rd.load_bare, "faststream": rd.load_faststream}
    t = time.monotonic()
    await loader[kind](dsn, n)
    await common.settle_table(dsn, rd.TABLES[kind][0])
    print(f"  [{kind}] template of {n} events loaded in {time.monotonic() - t:.1f}s", flush=True)
    return dsn


@contextlib.asynccontextmanager
async def clone(template_dsn: str) -> AsyncIterator[str]:
    name = f"tether_bench_{common.run_id()}"
    admin = await asyncpg.connect(common.PG_ADMIN_DSN)
    try:
        template = template_dsn.rpartition("/")[2]
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    dsn = common.dsn_for(name)
    try:
        yield dsn
    finally:
        await common.drop_database(dsn)


# --------------------------------------------------------------------------- rounds


async def one_round(
    broker: str, contender: str, s: rd.Settings, templates: dict[str, str], tag: str
) -> Result:
    n = s.events
    async with clone(templates[TEMPLATE_KIND[contender]]) as dsn:
        table, live_sql = rd.TABLES[contender]
        await common.settle_table(dsn, table)
        expected = await _ids(dsn, contender)
        print(f"  [{broker}/{contender}] draining ({common.load_note()})", flush=True)
        if broker == "jetstream":
            return await _jetstream_round(contender, s, dsn, table, live_sql, expected, tag)
        t = BrokerTarget(broker, contender, dsn, f"bench.{tag}.{contender}", live_sql)
        async with broker_target(t):
            seconds, reports = await drain(t, s, n)
            read, ids = await read_ids(t)
    return _result(broker, contender, s, seconds, reports, read, ids, expected)


async def _jetstream_round(
    contender: str,
    s: rd.Settings,
    dsn: str,
    table: str,
    live_sql: str,
    expected: set[str],
    tag: str,
) -> Result:
    """``relay_drain.py``'s contenders, on the cloned backlog."""
    stream = f"BENCH_{tag}_{contender}".upper()
    subject = f"bench.{tag}.{contender}.orders"
    target = rd.Target(contender, dsn, stream, subject, table, live_sql)
    await common.create_stream(stream, [subject])
    try:
        seconds, reports = await rd.drain(target, s, s.events)
        read, msg_ids = await common.collect_msg_ids(stream, subject)
    finally:
        await common.delete_stream(stream)
    return _result("jetstream", contender, s, seconds, reports, read, msg_ids, expected)


async def _ids(dsn: str, contender: str) -> set[str]:
    """The event ids of the backlog, from the payloads (every contender's payload has one)."""
    table = rd.TABLES[contender][0]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT payload FROM {table}")  # json, or bytea
    finally:
        await conn.close()
    raw = (r[0] if isinstance(r[0], bytes) else r[0].encode() for r in rows)
    return {m.decode() for payload in raw for m in EVENT_ID.findall(payload)}


def _result(
    broker: str,
    contender: str,
    s: rd.Settings,
    seconds: float,
    reports: list[Any],
    read: int,
    ids: set[str],
    expected: set[str],
) -> Result:
    cpu = sum(r[2].get("cpu_s", 0.0) for r in reports if r[0] == "ok")
    res = Result(
        broker=broker,
        contender=contender,
        procs=_procs(contender, s),
        events=s.events,
        seconds=round(seconds, 3),
        per_s=round(s.events / seconds),
        messages=read,
        distinct_ids=len(ids),
        ids_match=ids == expected,
        cpu_us_per_event=round(cpu / s.events * 1e6, 1),
    )
    print(
        f"  [{broker}/{contender}] {res.per_s} events/s in {res.seconds}s, relay CPU "
        f"{res.cpu_us_per_event} us/event; {read} messages, {len(ids)} distinct ids, "
        f"all ids: {res.ids_match}",
        flush=True,
    )
    return res


def for_contender(contender: str, s: rd.Settings, o: Options) -> rd.Settings:
    if contender == "faststream" and o.fs_events:
        return replace(s, events=o.fs_events)
    return s


async def main(s: rd.Settings, o: Options) -> None:
    tag = common.run_id()
    templates = {
        TEMPLATE_KIND[c]: await make_template(TEMPLATE_KIND[c], for_contender(c, s, o).events)
        for c in sorted(o.contenders)
    }
    results: list[Result] = []
    try:
        for broker in o.brokers:
            for contender in o.contenders:
                settings = for_contender(contender, s, o)
                try:
                    results.append(await one_round(broker, contender, settings, templates, tag))
                except Exception as exc:
                    print(f"  [{broker}/{contender}] FAILED: {exc!r}", file=sys.stderr, flush=True)
    finally:
        for dsn in templates.values():
            await common.drop_database(dsn)
    report(results, s, o)


_NOT_USED = {"out_dir", "rounds", "contenders", "keys", "profile"}


def report(results: list[Result], s: rd.Settings, o: Options) -> None:
    by = {(r.broker, r.contender): r for r in results}
    rows = []
    ratios: dict[str, dict[str, float | None]] = {}
    for broker in o.brokers:
        t, b, f = (by.get((broker, c)) for c in ("tether", "bare", "faststream"))
        ratios[broker] = {
            "vs_bare": round(t.per_s / b.per_s, 2) if t and b else None,
            "vs_faststream": round(t.per_s / f.per_s, 2) if t and f else None,
        }
        for r in (t, b, f):
            if r is None:
                continue
            vs = (
                ""
                if r.contender != "tether"
                else (f"{ratios[broker]['vs_bare']} x bare, {ratios[broker]['vs_faststream']} x fs")
            )
            ok = "yes" if r.ids_match and r.messages >= r.events else "NO"
            rows.append(
                [broker, r.contender, r.procs, r.events, r.per_s, r.cpu_us_per_event, ok, vs]
            )
    common.print_table(
        f"Relay drain, {s.events} events of ~{common.PAYLOAD_BYTES} B, Postgres -> broker",
        [
            "broker",
            "contender",
            "procs",
            "events",
            "events/s",
            "relay CPU us/event",
            "all ids, read back",
            "Tether ratio",
        ],
        rows,
    )
    record: dict[str, Any] = {
        "bench": "relay_brokers",
        "events": s.events,
        "fs_events": o.fs_events or s.events,
        "tether_procs": s.tether_procs,
        "per_s": {f"{r.broker}/{r.contender}": r.per_s for r in results},
        "relay_cpu_us_per_event": {
            f"{r.broker}/{r.contender}": r.cpu_us_per_event for r in results
        },
        "ratio": ratios,
        "targets": {"vs_bare": 0.8, "vs_faststream": 2.0},
        "all_delivered": all(r.ids_match and r.messages >= r.events for r in results),
        "runs": [asdict(r) for r in results],
        "settings": {k: v for k, v in asdict(s).items() if k not in _NOT_USED},
        **common.environment(),
    }
    common.emit_json(record)


def parse_args() -> tuple[rd.Settings, Options]:
    s, o = rd.Settings(), Options()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=s.events)
    p.add_argument("--brokers", default=",".join(o.brokers))
    p.add_argument("--contenders", default=",".join(o.contenders))
    p.add_argument("--tether-procs", type=int, default=s.tether_procs)
    p.add_argument("--tether-batch", type=int, default=s.tether_batch)
    p.add_argument(
        "--tether-concurrency", type=int, default=1, help="batches in flight per relay process"
    )
    p.add_argument("--bare-procs", type=int, default=s.bare_procs)
    p.add_argument("--bare-tasks", type=int, default=s.bare_tasks)
    p.add_argument("--bare-batch", type=int, default=s.bare_batch)
    p.add_argument("--fs-procs", type=int, default=s.fs_procs)
    p.add_argument("--fs-workers", type=int, default=s.fs_workers)
    p.add_argument("--fs-events", type=int, default=o.fs_events)
    p.add_argument("--timeout", type=float, default=s.timeout)
    a = p.parse_args()
    s = replace(
        s,
        events=a.events,
        tether_procs=a.tether_procs,
        tether_batch=a.tether_batch,
        tether_extra={"concurrency": a.tether_concurrency} if a.tether_concurrency > 1 else {},
        bare_procs=a.bare_procs,
        bare_tasks=a.bare_tasks,
        bare_batch=a.bare_batch,
        fs_procs=a.fs_procs,
        fs_workers=a.fs_workers,
        timeout=a.timeout,
    )
    o = Options(
        brokers=tuple(a.brokers.split(",")),
        contenders=tuple(a.contenders.split(",")),
        fs_events=a.fs_events,
    )
    unknown = set(o.brokers) - {"rabbitmq", "redis", "jetstream"} | set(o.contenders) - set(WORKERS)
    if unknown:
        p.error(f"unknown broker or contender: {sorted(unknown)}")
    return s, o


if __name__ == "__main__":
    common.use_uvloop()
    settings, options = parse_args()
    asyncio.run(main(settings, options))
