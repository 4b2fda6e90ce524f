"""Run the demo: producer, relay, broker, consumer and view in one event loop.

Timeline (fractions of ``duration``): at 15% the broker loses a few acks (retries and
duplicate deliveries), from 35% it is down for up to 3 s (the relay defers without spending
attempts), at 80% the producer stops and the rest drains. The verdict compares the set of
event ids committed by the producer with the set the consumer received.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite

from tether.core.backoff import RetryPolicy
from tether.demo.broker import DemoBroker
from tether.demo.consumer import Shipping
from tether.demo.shop import SCHEMA, SQL, Shop
from tether.demo.view import Frame
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.store.sqlite.ddl import PRAGMAS

RELAY_CONFIG = RelayConfig(
    batch_size=100,
    poll_interval=0.01,
    idle_poll_interval=0.05,
    idle_after=1.0,
    # Short retries so lost acks are retried within the demo; plenty of attempts, so none dies.
    retry=RetryPolicy(max_attempts=25, base=timedelta(milliseconds=100), cap=timedelta(seconds=1)),
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration: float = 15.0
    rate: float = 50.0
    db: Path | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class DemoResult:
    produced: int
    delivered: int
    duplicates: int
    lost: int
    dead: int
    out_of_order: int
    seconds: float
    db: Path

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.out_of_order == 0

    def closing_line(self) -> str:
        return (
            f"produced {self.produced:,} events · delivered {self.delivered:,}, each exactly once "
            f"({self.duplicates} duplicate deliveries dropped by the inbox) · "
            f"{self.out_of_order} out of order · {self.lost} lost"
        )


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    for pragma in PRAGMAS:
        await conn.execute(pragma)
    return conn


class Demo:
    """One run. ``on_frame`` is called about eight times a second with the current state."""

    def __init__(self, options: DemoOptions, on_frame: Callable[[Frame], None]) -> None:
        self.options = options
        self.frame = Frame(duration=options.duration)
        self._on_frame = on_frame
        self._rng = random.Random(options.seed)
        self._produced: set[uuid.UUID] = set()
        self._started = time.monotonic()
        self._delivered_at: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)

    def note(self, text: str) -> None:
        self.frame.notes.append((self._elapsed(), text))

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    async def _produce(self, shop: Shop, store: SqliteOutboxStore, until: float) -> None:
        interval = 1.0 / self.options.rate
        start = self._elapsed()
        n = 0
        while self._elapsed() < until:
            pay = self._rng.random() < 0.4
            event_id = (await shop.pay_order() if pay else None) or await shop.place_order()
            self._produced.add(event_id)
            store.notify()  # wake the relay now instead of at its next poll
            n += 1
            # Pacing to the requested rate (not a wait for a condition).
            await asyncio.sleep(max(0.0, start + n * interval - self._elapsed()))

    async def _scenario(self, broker: DemoBroker) -> None:
        d = self.options.duration
        outage = min(3.0, 0.25 * d)
        await self._at(0.15 * d)
        broker.lose_acks(3)
        self.note("broker loses 3 acks: the relay retries those events (1 attempt each); "
                  "the consumer gets them twice and its inbox drops the repeats")  # fmt: skip
        await self._at(0.35 * d)
        broker.down = True
        self.note(f"broker DOWN for {outage:.0f}s: the relay defers events without spending "
                  "attempts; the backlog waits safely in the outbox table")  # fmt: skip
        await self._at(0.35 * d + outage)
        broker.down = False
        self.note("broker back UP: the relay notices on its next probe and drains the backlog")

    async def _at(self, second: float) -> None:
        await asyncio.sleep(max(0.0, second - self._elapsed()))

    async def _sample(self, monitor: aiosqlite.Connection, relay: Relay, shipping: Shipping,
                      broker: DemoBroker) -> None:  # fmt: skip
        async with monitor.execute(SQL["outbox_status"].sql) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        f = self.frame
        f.elapsed = self._elapsed()
        f.produced = len(self._produced)
        f.delivered = len(shipping.received)
        f.duplicates = shipping.duplicates
        f.pending, f.retrying, f.dead = int(row[0]), int(row[1]), int(row[2])
        f.lag = None if row[3] is None else max(0.0, _age(row[3]))
        f.broker_down = broker.down
        f.relay_retried, f.relay_deferred = relay.stats.retried, relay.stats.deferred
        self._delivered_at.append((f.elapsed, f.delivered))
        f.throughput = _rate(self._delivered_at)
        self._on_frame(f)

    def _all_delivered(self, shipping: Shipping) -> bool:
        return self._produced <= shipping.received

    async def run(self, path: Path) -> DemoResult:
        d = self.options.duration
        store = await SqliteOutboxStore.connect(str(path))
        async with _connections(path, 3) as (producer, consumer, monitor):
            await producer.executescript(SCHEMA)
            broker = DemoBroker()
            relay = Relay(store, [broker], config=RELAY_CONFIG)
            shipping = Shipping(consumer, broker.memory)
            stop_relay, stop_consumer = asyncio.Event(), asyncio.Event()
            background = [
                asyncio.create_task(relay.run(stop_relay)),
                asyncio.create_task(shipping.run(stop_consumer)),
                asyncio.create_task(self._scenario(broker)),
            ]
            producing = asyncio.create_task(
                self._produce(Shop(producer, self._rng), store, 0.8 * d)
            )
            try:
                while not producing.done():
                    await self._sample(monitor, relay, shipping, broker)
                    await asyncio.wait({producing}, timeout=0.125)
                await producing
                self.frame.phase = "draining"
                self.note("producer stops; the relay drains what is left")
                drain_deadline = self._elapsed() + max(10.0, d)
                while not self._all_delivered(shipping) and self._elapsed() < drain_deadline:
                    await self._sample(monitor, relay, shipping, broker)
                    await asyncio.sleep(0.125)  # refresh period of the view
                self.frame.phase = "done"
                if self._all_delivered(shipping):
                    self.note("every event produced has reached the consumer")
                await self._sample(monitor, relay, shipping, broker)
            finally:
                stop_relay.set()
                stop_consumer.set()
                for task in background[2:]:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await store.close()
                await broker.close()
            await shipping.catch_up()
        return DemoResult(
            produced=len(self._produced),
            delivered=len(shipping.received & self._produced),
            duplicates=shipping.duplicates,
            lost=len(self._produced - shipping.received),
            dead=self.frame.dead,
            out_of_order=shipping.out_of_order,
            seconds=self._elapsed(),
            db=path,
        )


@contextlib.asynccontextmanager
async def _connections(path: Path, n: int) -> AsyncIterator[list[aiosqlite.Connection]]:
    conns = [await _connect(path) for _ in range(n)]
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.close()


def _age(created_at: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(created_at)).total_seconds()


def _rate(samples: collections.deque[tuple[float, int]]) -> float:
    """Deliveries per second over the last second of samples."""
    latest_t, latest_n = samples[-1]
    for t, n in samples:
        if latest_t - t <= 1.0:
            return 0.0 if latest_t == t else (latest_n - n) / (latest_t - t)
    return 0.0


async def run_demo(options: DemoOptions, on_frame: Callable[[Frame], None]) -> DemoResult:
    """Run against ``options.db`` (kept) or a temporary file (removed afterwards)."""
    folder = None if options.db else Path(tempfile.mkdtemp(prefix="tether-demo-"))
    path = options.db or folder / "demo.db"  # type: ignore[operator]
    try:
        return await Demo(options, on_frame).run(path)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
