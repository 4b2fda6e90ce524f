"""The relay: claim outbox rows, publish them to their sinks, settle the outcome.

One batch is one unit of work on the store (a transaction on PostgreSQL). A batch holds the head
of each partition key it claimed and a run of the rows behind it (the keys share the batch
evenly, at least ``per_key_run`` rows each: :mod:`tether.outbox.claiming`); it is published
in waves (the n-th event of every key together), and a key whose event failed publishes nothing
more in this batch: its later events stay untouched, behind it. Outcomes, per event:

* every routed sink acknowledged      -> published (deleted, or kept as done)
* a sink reported the event failed   -> one attempt spent; retried after backoff, or dead
* a sink is unreachable              -> the event waits, no attempt spent; the sink is paused
* a sink deferred the event          -> the event waits the sink's wait, no attempt spent
* the event matches no route         -> dead at once ("no route"), never silently dropped

The failures are outcomes of the one item lifecycle (:mod:`tether.core.lifecycle`), which the
work-item engine shares; sink pausing is :class:`tether.sinks.pause.SinkPauses`.

A sink that writes into the relay's own database (the ``webhooks`` sink) may offer
``publish_in(connection, events)``: when the store's batch exposes its transaction's
``connection``, the relay calls that instead of ``publish``, so what the sink writes commits or
rolls back with the settling of the same rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.core import lifecycle
from tether.core.backoff import RetryPolicy
from tether.core.clock import utcnow
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.core.waiting import wait_set
from tether.ops import metrics, tracing
from tether.ops.runners import RunnerRegistry, maybe_heartbeat
from tether.outbox.ports import ClaimedEvent, OutboxStore, Retry
from tether.outbox.routing import Router
from tether.sinks import pause
from tether.sinks.base import Outcome, Sink

log = logging.getLogger("tether.relay")

# The loop's back-off after a failed batch follows the same curve as a sink's pause.
_OUTAGE = pause.OUTAGE


@dataclass(frozen=True, slots=True)
class RelayConfig:
    batch_size: int = 500
    concurrency: int = 1
    per_key_run: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    publish_timeout: float = 10.0
    poll_interval: float = 0.005
    idle_poll_interval: float = 0.25
    idle_after: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ConfigError(f"relay batch_size must be 1..10000, got {self.batch_size}")
        if not 1 <= self.per_key_run <= 1000:
            raise ConfigError(f"relay per_key_run must be 1..1000, got {self.per_key_run}")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError(f"relay concurrency must be 1..64, got {self.concurrency}")
        if self.publish_timeout <= 0:
            raise ConfigError(f"relay publish_timeout must be positive, got {self.publish_timeout}")
        if not 0 < self.poll_interval <= self.idle_poll_interval:
            raise ConfigError(
                "relay poll intervals must satisfy 0 < poll_interval <= idle_poll_interval"
            )


@dataclass(frozen=True, slots=True)
class BatchReport:
    claimed: int = 0
    published: int = 0
    retried: int = 0
    deferred: int = 0
    dead: int = 0


@dataclass(slots=True)
class RelayStats:
    batches: int = 0
    published: int = 0
    retried: int = 0
    deferred: int = 0
    dead: int = 0
    loop_errors: int = 0
    last_error: str | None = None
    # Age of the oldest event in the last batch when it was claimed (0 after an empty one).
    lag_s: float = 0.0

    def add(self, report: BatchReport) -> None:
        self.batches += 1
        self.published += report.published
        self.retried += report.retried
        self.deferred += report.deferred
        self.dead += report.dead

    def runner_stats(self) -> dict[str, float]:
        """What the relay reports to the runner registry at each beat."""
        return {
            "published_total": self.published,
            "failed_total": self.retried,
            "deferred_total": self.deferred,
            "dead_total": self.dead,
            "lag_s": self.lag_s,
        }


@dataclass(frozen=True, slots=True)
class _Result:
    ok: bool
    error: str | None = None
    retryable: bool = True
    deferred: bool = False
    wait_s: float | None = None  # the sink's own wait for a deferred event; None: its pause


_OK = _Result(ok=True)


class Relay:
    """Moves events from an :class:`OutboxStore` to :class:`Sink` s. The caller owns both."""

    def __init__(
        self,
        store: OutboxStore,
        sinks: Sequence[Sink],
        *,
        router: Router | None = None,
        config: RelayConfig | None = None,
        rng: random.Random | None = None,
        registry: RunnerRegistry | None = None,
        name: str | None = None,
        registry_interval_s: float = 10.0,
    ) -> None:
        """``registry``: :meth:`run` registers the relay there (as ``name``, by default
        ``<host>:<pid>``) and beats its counters every ``registry_interval_s`` seconds."""
        names = [s.name for s in sinks]
        if not sinks:
            raise ConfigError("a relay needs at least one sink")
        if len(set(names)) != len(names):
            raise ConfigError(f"sink names must be unique, got {names}")
        bad = [n for n in names if not n or "," in n]
        if bad:
            raise ConfigError(f"sink names must be non-empty and contain no comma: {bad}")
        self._store = store
        self._sinks = {s.name: s for s in sinks}
        # Sinks that can write inside the batch's transaction (see the module docstring).
        self._in_tx = {s.name for s in sinks if callable(getattr(s, "publish_in", None))}
        self._router = router or Router.everything_to(names)
        self.config = config or RelayConfig()
        self._rng = rng or random.Random()
        self.pauses = pause.SinkPauses()
        self.stats = RelayStats()
        self.batch_done = asyncio.Event()
        self._registry = registry
        self._name = name
        self._registry_interval_s = registry_interval_s

    async def run_once(self) -> BatchReport:
        """Claim one batch, publish it, settle it. Returns what happened."""
        started = time.perf_counter()
        async with self._store.claim(self.config.batch_size, run=self.config.per_key_run) as batch:
            if not batch.events:
                self.stats.lag_s = 0.0
                return BatchReport()
            oldest = min(c.event.created_at for c in batch.events)
            self.stats.lag_s = max((utcnow() - oldest).total_seconds(), 0.0)
            tracing.claimed(batch.events)  # each event's wait as a span of its trace
            tx = getattr(batch, "connection", None) if self._in_tx else None
            published, retries, report = await self._deliver(batch.events, tx)
            await batch.settle(published, retries)
        metrics.RELAY_BATCH_SECONDS.observe(time.perf_counter() - started)
        self._count(report)
        return report

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run ``config.concurrency`` claim loops until ``stop`` is set."""
        stop = stop or asyncio.Event()
        async with maybe_heartbeat(
            self._registry,
            "relay",
            self._name,
            interval_s=self._registry_interval_s,
            stats=self.stats.runner_stats,
        ):
            await asyncio.gather(*(self._loop(stop) for _ in range(self.config.concurrency)))

    async def _loop(self, stop: asyncio.Event) -> None:
        last_work = time.monotonic()
        failures = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = await self.run_once()
                failures = 0
            except Exception as exc:  # the relay must outlive any failure of store or sink
                failures += 1
                self.stats.loop_errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                metrics.RELAY_ERRORS.inc()
                log.warning("relay batch failed (%s); retrying", self.stats.last_error)
                await wait_set(stop, _OUTAGE.delay(failures, self._rng).total_seconds())
                continue
            if report.claimed >= self.config.batch_size:
                continue
            now = time.monotonic()
            if report.claimed:
                last_work = now
            idle = now - last_work > self.config.idle_after
            interval = self.config.idle_poll_interval if idle else self.config.poll_interval
            # Polls keep a fixed cadence from the start of the last claim: sleeping a whole
            # interval after each batch would add the batch's own time to every event's wait.
            timeout = interval - (now - started)
            if timeout > 0:
                await _wait_for_work(stop, self._store, timeout)
            else:
                await asyncio.sleep(0)

    async def _deliver(
        self, claimed: Sequence[ClaimedEvent], tx: object = None
    ) -> tuple[list[int], list[Retry], BatchReport]:
        targets = [self._router.sinks_for(c.event) for c in claimed]
        by_event: list[dict[str, _Result] | None] = [None] * len(claimed)
        blocked: set[str] = set()
        for wave in _waves(claimed):
            ready = [i for i in wave if claimed[i].event.partition_key not in blocked]
            await self._publish_wave(claimed, targets, ready, by_event, tx)
            for i in ready:
                results = by_event[i]
                key = claimed[i].event.partition_key
                if key is not None and (
                    not targets[i] or any(not r.ok for r in (results or {}).values())
                ):
                    blocked.add(key)  # its later events wait: order before progress
        attempted = [i for i, r in enumerate(by_event) if r is not None]
        published, retries, report = self._settlements(
            [claimed[i] for i in attempted],
            [targets[i] for i in attempted],
            [by_event[i] or {} for i in attempted],
        )
        return published, retries, dataclasses.replace(report, claimed=len(claimed))

    async def _publish_wave(
        self,
        claimed: Sequence[ClaimedEvent],
        targets: Sequence[frozenset[str]],
        wave: Sequence[int],
        by_event: list[dict[str, _Result] | None],
        tx: object = None,
    ) -> None:
        per_sink: dict[str, list[int]] = {}
        for i in wave:
            by_event[i] = {}
            for name in targets[i] - claimed[i].done_sinks:
                per_sink.setdefault(name, []).append(i)
        names = list(per_sink)
        calls = [self._publish(n, [claimed[i] for i in per_sink[n]], tx) for n in names]
        # One sink (the usual case) is awaited directly: a gather costs a task and several
        # loop turns per wave, and a hot key's run is one wave per event.
        results = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
        for name, sink_results in zip(names, results, strict=True):
            for i, result in zip(per_sink[name], sink_results, strict=True):
                by_event[i][name] = result  # type: ignore[index]

    def _settlements(
        self,
        claimed: Sequence[ClaimedEvent],
        targets: Sequence[frozenset[str]],
        by_event: Sequence[dict[str, _Result]],
    ) -> tuple[list[int], list[Retry], BatchReport]:
        published: list[int] = []
        retries: list[Retry] = []
        retried = deferred = dead = 0
        now = utcnow()
        for c, routed, results in zip(claimed, targets, by_event, strict=True):
            failed = {n: r for n, r in results.items() if not r.ok}
            if routed and not failed:
                published.append(c.seq)
                continue
            if routed:
                done = c.done_sinks | {n for n, r in results.items() if r.ok}
                retry = Retry(c.seq, self._failure(c, failed, now), done)
            else:
                retry = Retry(c.seq, self._no_route(c, now), c.done_sinks)
            retries.append(retry)
            if retry.transition.dead:
                dead += 1
            elif retry.transition.charged:
                retried += 1
            else:
                deferred += 1
        report = BatchReport(len(claimed), len(published), retried, deferred, dead)
        return published, retries, report

    def _failure(
        self, c: ClaimedEvent, failed: dict[str, _Result], now: datetime
    ) -> lifecycle.Transition:
        charged = [r for r in failed.values() if not r.deferred]
        error = "; ".join(f"{n}: {r.error}" for n, r in sorted(failed.items()))
        if not charged:
            return self._decide(c, lifecycle.Outcome.DEFER, error, now, delay=self._wait(failed))
        permanent = any(not r.retryable for r in charged)
        outcome = lifecycle.Outcome.PERMANENT if permanent else lifecycle.Outcome.RETRY
        return self._decide(c, outcome, error, now)

    def _wait(self, deferred: dict[str, _Result]) -> timedelta:
        # Until the first deferring sink may take the event again: the sink's own wait where it
        # gave one (Retry-After, pacing), else the sink's pause.
        paused = [n for n, r in deferred.items() if r.wait_s is None]
        waits = [timedelta(seconds=r.wait_s) for r in deferred.values() if r.wait_s is not None]
        if paused:
            waits.append(self.pauses.wait(paused))
        return max(pause.MIN_WAIT, min(waits))

    def _no_route(self, c: ClaimedEvent, now: datetime) -> lifecycle.Transition:
        error = f"no route sends topic {c.event.topic!r} / type {c.event.type!r} to any sink"
        return self._decide(c, lifecycle.Outcome.NO_ROUTE, error, now)

    def _decide(
        self,
        c: ClaimedEvent,
        outcome: lifecycle.Outcome,
        error: str,
        now: datetime,
        delay: timedelta | None = None,
    ) -> lifecycle.Transition:
        # Row locks are the relay's lease, so the attempt is counted as it is settled.
        return lifecycle.decide(
            outcome,
            attempt=c.attempts + 1,
            max_attempts=c.max_attempts,
            policy=self.config.retry,
            now=now,
            error=error,
            delay=delay,
            rng=self._rng,
        )

    async def _publish(
        self, name: str, claimed: Sequence[ClaimedEvent], tx: object = None
    ) -> list[_Result]:
        if self.pauses.paused(name):
            return [_Result(False, f"sink {name} unavailable (paused)", deferred=True)] * len(
                claimed
            )
        sink = tracing.publisher(self._sinks[name])  # publish spans when tracing is on
        events = [c.event for c in claimed]
        try:
            # asyncio.timeout, not wait_for: no task per call (a hot key publishes per event).
            async with asyncio.timeout(self.config.publish_timeout):
                if tx is not None and name in self._in_tx:
                    outcomes = await sink.publish_in(tx, events)  # type: ignore[attr-defined]
                else:
                    outcomes = await sink.publish(events)
        except SinkUnavailableError as exc:
            return self._sink_down(name, str(exc), len(claimed))
        except TimeoutError:
            timeout = self.config.publish_timeout
            return [_Result(False, f"publish timed out after {timeout:g}s")] * len(claimed)
        except Exception as exc:
            if len(claimed) == 1:
                return [_Result(False, f"{type(exc).__name__}: {exc}")]
            # One poisonous event must not cost the whole batch: find it by publishing alone.
            singles = [await self._publish(name, [c], tx) for c in claimed]
            return [r[0] for r in singles]
        self.pauses.resume(name)
        if len(outcomes) != len(claimed):
            error = f"sink {name} returned {len(outcomes)} outcomes for {len(claimed)} events"
            return [_Result(False, error)] * len(claimed)
        return [_OK if o.ok else _from_outcome(o) for o in outcomes]

    def _sink_down(self, name: str, error: str, count: int) -> list[_Result]:
        metrics.SINK_UNAVAILABLE.labels(name).inc()
        paused = self.pauses.pause(name).total_seconds()
        log.warning("sink %s unavailable (%s); pausing it %.2fs", name, error, paused)
        return [_Result(False, f"unavailable: {error}", deferred=True)] * count

    def _count(self, report: BatchReport) -> None:
        self.stats.add(report)
        for outcome in ("published", "retried", "deferred", "dead"):
            value = getattr(report, outcome)
            if value:
                metrics.RELAY_EVENTS.labels(outcome).inc(value)
        self.batch_done.set()
        self.batch_done.clear()


def _waves(claimed: Sequence[ClaimedEvent]) -> list[list[int]]:
    """Wave n holds the n-th claimed event of every partition key (unkeyed events go in wave 0),
    so no wave holds two events of one key and a key's events go out one wave after another."""
    depth: dict[str, int] = {}
    waves: list[list[int]] = [[]]
    for i, c in enumerate(claimed):
        key = c.event.partition_key
        n = 0
        if key is not None:
            n = depth.get(key, 0)
            depth[key] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(i)
    return waves


def _from_outcome(outcome: Outcome) -> _Result:
    if outcome.defer_s is not None:
        return _Result(False, outcome.error or "deferred", deferred=True, wait_s=outcome.defer_s)
    return _Result(False, outcome.error or "failed", outcome.retryable)


async def _wait_for_work(stop: asyncio.Event, store: OutboxStore, timeout: float) -> None:
    if stop.is_set():
        return
    stopper = asyncio.ensure_future(stop.wait())
    waiter = asyncio.ensure_future(store.wait(timeout))
    try:
        await asyncio.wait({stopper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopper, waiter):
            if not task.done():
                task.cancel()
