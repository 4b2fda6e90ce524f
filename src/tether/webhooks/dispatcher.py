"""The webhook dispatcher: claim deliveries under leases, POST them signed, settle the outcome.

It is a face over the work-item engine (:mod:`tether.queue`): deliveries are claimed with the
engine's claim (one per priority, in weighted shares so LOW is never starved), retried with the
delivery :class:`~tether.webhooks.schedule.RetrySchedule`, dead-lettered and deferred through
the engine, so the one item lifecycle holds. What it adds is HTTP:

* up to ``max_in_flight`` requests at once; each endpoint is admitted by its gate
  (:mod:`tether.webhooks.gates`): at its concurrency or rate limit, or with its circuit breaker
  open (:mod:`tether.guard`), a delivery is deferred with no attempt spent;
* successes are settled in batches (one statement for the completions, one for the log);
  a process killed before that settles nothing, and the deliveries come back when their lease
  expires, with the same ``webhook-id``;
* while it lives, the dispatcher renews the leases of everything it holds every third of a
  lease (one statement for all), so a request slower than the lease keeps its delivery and the
  lease can be short: a killed process's deliveries return within one lease;
* 410 Gone, or failing for ``disable_after`` (5 days), disables the endpoint and tells the
  tenant through an outbox event, ``WebhookEndpointDisabled``, written in the same transaction.

``run_once()`` claims once and starts the requests; ``drain()`` waits for them; ``run(stop)``
loops. Tests drive ``run_once``/``drain`` with a frozen clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tether import guard
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigError, LeaseLostError, StoreError
from tether.ops.runners import RunnerRegistry, maybe_heartbeat
from tether.queue.ports import Claimed, ItemState
from tether.queue.postgres import PostgresQueue
from tether.queue.worker import default_worker_name
from tether.store.sqlfile import queries
from tether.webhooks import sender
from tether.webhooks.gates import Gates, breaker_name
from tether.webhooks.journal import Journal
from tether.webhooks.model import Endpoint, Priority
from tether.webhooks.schedule import FixedWait, RetrySchedule
from tether.webhooks.sender import Answer, SendPolicy, Verdict
from tether.webhooks.store import Box, EndpointStore
from tether.webhooks.table import DELIVERIES

log = logging.getLogger("tether.webhooks.dispatcher")
_Q = queries("tether.webhooks", "postgres")
DISABLED_EVENT = "WebhookEndpointDisabled"


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    weights: Mapping[Priority, int] = field(
        default_factory=lambda: {Priority.HIGH: 6, Priority.MEDIUM: 3, Priority.LOW: 1}
    )
    max_in_flight: int = 64
    lease: timedelta = timedelta(seconds=60)
    """How long a claimed delivery stays ours without renewal; renewed every ``lease / 3``."""
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    retry_after_cap: timedelta = timedelta(hours=1)
    disable_after: timedelta = timedelta(days=5)
    send: SendPolicy = field(default_factory=SendPolicy)
    breaker: Any = "default"
    """A :class:`tether.guard.BreakerPolicy`, ``"default"`` for its defaults, None for none."""
    endpoint_ttl: float = 2.0
    """Seconds an endpoint read is reused before it is read again."""
    poll_interval: float = 0.02
    idle_poll_interval: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.max_in_flight <= 10_000:
            raise ConfigError(f"max_in_flight must be 1..10000, got {self.max_in_flight}")
        if self.lease < timedelta(seconds=1):
            # Renewed every third of it: shorter would be a heartbeat storm on the database.
            raise ConfigError(f"lease must be at least 1s, got {self.lease}")
        if set(self.weights) != set(Priority) or any(w < 1 for w in self.weights.values()):
            raise ConfigError("weights must give every priority (high, medium, low) a weight >= 1")
        if not 0 < self.connect_timeout <= self.total_timeout:
            raise ConfigError("timeouts must satisfy 0 < connect_timeout <= total_timeout")


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        config: DispatcherConfig | None = None,
        ssrf: Any = None,
        box: Box | None = None,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        breaker_store: Any = None,
        name: str | None = None,
        registry: RunnerRegistry | None = None,
        registry_interval_s: float = 10.0,
    ) -> None:
        """``registry``: :meth:`run` registers the dispatcher there as ``name`` and beats its
        counters every ``registry_interval_s`` seconds."""
        from tether import net

        self.registry = registry
        self.registry_interval_s = registry_interval_s

        self.config = config or DispatcherConfig()
        self.clock = clock or SYSTEM_CLOCK
        self.name = name or default_worker_name()
        self.pool = pool
        self.ssrf = ssrf if ssrf is not None else net.SsrfPolicy()
        self.endpoints = EndpointStore(pool, ssrf=self.ssrf, box=box, clock=self.clock)
        self.queues = {
            p: PostgresQueue(
                pool,
                spec=DELIVERIES,
                queue=p.value,
                policy=self.config.schedule,
                clock=self.clock,
                keep_done=True,
                key_ordering=False,
            )
            for p in Priority
        }
        self._client = client or net.safe_client(
            self.ssrf,
            connect_timeout=self.config.connect_timeout,
            total_timeout=self.config.total_timeout,
            limits=httpx.Limits(max_connections=self.config.max_in_flight * 2),
        )
        self._owns_client = client is None
        self._breaker_store = breaker_store
        self.gates = Gates(self._guard)
        self.journal = Journal(pool, self.queues[Priority.MEDIUM])
        self._cache: dict[uuid.UUID, tuple[float, Endpoint | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._quiet_until: dict[Priority, float] = {}
        self._slot_free = asyncio.Event()
        # Every delivery claimed whose request or settling runs, by seq; with the successes
        # the journal has yet to flush, the heartbeat renews their leases.
        self._held: dict[int, Claimed] = {}
        # Counters for tests, benchmarks and metrics.
        self.sent = self.failed = self.deferred = self.dead = self.lost = 0

    def _guard(self, endpoint_id: uuid.UUID) -> Any:
        breaker = self.config.breaker
        if breaker is None:
            return None
        policy = guard.BreakerPolicy() if breaker == "default" else breaker
        # One metrics label for every endpoint: an id per label would grow without bound.
        return guard.Guard(
            breaker_name(endpoint_id),
            breaker=policy,
            store=self._breaker_store,
            metrics_name="webhooks",
            clock=lambda: self.clock.now().timestamp(),  # breaker timing follows our clock
        )

    # -- the loop -----------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim what the free slots allow and start those requests; returns how many."""
        free = self.config.max_in_flight - len(self._tasks)
        if free <= 0:
            return 0
        claimed = await self._claim(free)
        for c in claimed:
            self._held[c.item.seq] = c
            task = asyncio.create_task(self._handle(c))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait for every started request and settle the log."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.journal.flush()

    def runner_stats(self) -> dict[str, float]:
        """What the dispatcher reports to the runner registry at each beat."""
        return {
            "delivered_total": self.sent,
            "failed_total": self.failed,
            "deferred_total": self.deferred,
            "dead_total": self.dead,
            "in_flight": len(self._tasks),
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish what is in flight."""
        async with maybe_heartbeat(
            self.registry,
            "webhook-dispatcher",
            self.name,
            interval_s=self.registry_interval_s,
            stats=self.runner_stats,
        ):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        flusher = asyncio.create_task(self.journal.run(stop))
        beat = asyncio.create_task(self._heartbeat(stop))
        idle_since: float | None = None
        try:
            # Claim in batches: a claim per freed slot would cost a round trip per delivery.
            claim_at = max(1, self.config.max_in_flight // 4)
            while not stop.is_set():
                self._slot_free.clear()  # before counting, so no completion goes unseen
                if self._tasks and self.config.max_in_flight - len(self._tasks) < claim_at:
                    await _wait(stop, self._slot_free, self.config.idle_poll_interval)
                    continue
                try:
                    started = await self.run_once()
                except StoreError as exc:
                    log.warning("dispatcher %s: store error, retrying: %s", self.name, exc)
                    started = 0
                    await _wait(stop, None, self.config.idle_poll_interval)
                    continue
                if started:
                    idle_since = None
                    await asyncio.sleep(0)
                    continue
                if len(self._tasks) >= self.config.max_in_flight:
                    await _wait(stop, self._slot_free, self.config.idle_poll_interval)
                    continue
                now = time.monotonic()
                idle_since = idle_since or now
                idle = not self._tasks and now - idle_since > 2.0
                poll = self.config.idle_poll_interval if idle else self.config.poll_interval
                await _wait(stop, None, poll)
        finally:
            await self.drain()
            stop.set()
            await flusher
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def renew_leases(self) -> int:
        """Renew the lease of every delivery held and not yet settled; returns how many."""
        held = [*self._held.values(), *self.journal.pending()]
        if not held:
            return 0
        query = _Q["deliveries_heartbeat"]
        values = {
            "seqs": [c.item.seq for c in held],
            "tokens": [c.lease_token for c in held],
            "lease_until": self.clock.now() + self.config.lease,
        }
        try:
            rows = await self.pool.fetch(query.numbered, *query.args(values))
        except (asyncpg.PostgresError, OSError) as exc:
            raise StoreError(f"PostgreSQL failed renewing leases: {exc}") from exc
        return len(rows)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        interval = self.config.lease.total_seconds() / 3
        while not stop.is_set():
            await _wait(stop, None, interval)
            try:
                await self.renew_leases()
            except StoreError as exc:
                log.warning("dispatcher %s: could not renew leases: %s", self.name, exc)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- claiming in weighted shares ----------------------------------------------------------
    def _shares(self, free: int) -> dict[Priority, int]:
        now = time.monotonic()
        live = [p for p in Priority if self._quiet_until.get(p, 0.0) <= now] or list(Priority)
        total = sum(self.config.weights[p] for p in live)
        return {p: max(1, free * self.config.weights[p] // total) for p in live}

    async def _claim(self, free: int) -> list[Claimed]:
        shares = self._shares(free)
        got: list[Claimed] = []
        full: list[Priority] = []
        for priority, share in shares.items():
            batch = await self._claim_from(priority, share)
            got += batch
            if len(batch) == share:
                full.append(priority)
        room = free - len(got)
        for priority in full:  # what an empty priority left goes to the busy ones, in order
            if room <= 0:
                break
            batch = await self._claim_from(priority, room)
            got += batch
            room -= len(batch)
        return got

    async def _claim_from(self, priority: Priority, limit: int) -> list[Claimed]:
        batch = await self.queues[priority].claim(limit, lease=self.config.lease, worker=self.name)
        if not batch:
            self._quiet_until[priority] = time.monotonic() + self.config.poll_interval * 5
        return batch

    # -- one delivery ---------------------------------------------------------------------------
    async def _endpoint(self, endpoint_id: uuid.UUID) -> Endpoint | None:
        now = time.monotonic()
        hit = self._cache.get(endpoint_id)
        if hit is not None and now - hit[0] < self.config.endpoint_ttl:
            return hit[1]
        endpoint = await self.endpoints.get_any(endpoint_id)
        self._cache[endpoint_id] = (now, endpoint)
        return endpoint

    async def _handle(self, claimed: Claimed) -> None:
        queue = self.queues[Priority(claimed.item.queue or Priority.MEDIUM)]
        try:
            await self._attempt(queue, claimed)  # a success is the journal's to renew from here
        except LeaseLostError:
            self.lost += 1
            log.warning("lease lost on delivery %s; its outcome was discarded", claimed.id)
        except StoreError as exc:
            self.lost += 1
            log.warning(
                "could not settle delivery %s (%s); it returns at lease expiry", claimed.id, exc
            )
        finally:
            self._held.pop(claimed.item.seq, None)

    async def _attempt(self, queue: PostgresQueue, claimed: Claimed) -> None:
        item = claimed.item
        endpoint = await self._endpoint(item.extra["endpoint_id"])
        if endpoint is None or not endpoint.enabled:
            why = "was deleted" if endpoint is None else f"is disabled ({endpoint.disabled_reason})"
            await queue.dead_letter(claimed, f"endpoint {why}; recover its deliveries once enabled")
            self.dead += 1
            return
        gate = self.gates.for_endpoint(endpoint)
        wait = gate.admit()
        if wait:
            await queue.defer(claimed, delay=timedelta(seconds=wait))
            self.deferred += 1
            return
        answer: Answer | None = None
        try:
            if gate.guard is not None:
                await gate.guard.before()
            answer = await sender.send(
                self._client, endpoint, item.id, item.payload,
                policy=self.config.send, now=self.clock.now(),
            )  # fmt: skip
        except guard.CircuitOpen as exc:
            delay = timedelta(seconds=max(exc.retry_after, 0.05))
            await queue.defer(
                claimed, delay=delay, reason="circuit open: the endpoint keeps failing"
            )
            self.deferred += 1
            return
        finally:
            gate.release(None if answer is None else answer.latency_ms / 1000)
        await self._record_breaker(gate, answer)
        await self._settle(queue, claimed, endpoint, gate, answer)

    async def _record_breaker(self, gate: Any, answer: Answer) -> None:
        if gate.guard is None:
            return
        if answer.endpoint_failed:
            await gate.guard.record_failure()
        else:
            await gate.guard.record_success()

    async def _settle(
        self,
        queue: PostgresQueue,
        claimed: Claimed,
        endpoint: Endpoint,
        gate: Any,
        answer: Answer,
    ) -> None:
        now = self.clock.now()
        if answer.verdict is Verdict.OK:
            self.journal.succeeded(claimed, answer, now)
            self.sent += 1
            if gate.failing:
                gate.failing = False
                await self._execute("endpoint_recovered", {"id": endpoint.id})
            return
        error = answer.error or "failed"
        if answer.verdict is Verdict.RETRY:
            state = await queue.fail(claimed, error, policy=self._retry_policy(answer))
        else:
            await queue.dead_letter(claimed, error)
            state = ItemState.DEAD
        dead = state is ItemState.DEAD
        self.dead += dead
        self.failed += not dead
        self.journal.attempted(claimed, answer, now, "dead" if dead else "retry")
        gate.failing = True
        if answer.verdict is Verdict.GONE:
            await self.disable(endpoint, "the endpoint answered 410 Gone")
            return
        since = await self._failing_since(endpoint.id, now)
        if since is not None and now - since >= self.config.disable_after:
            days = self.config.disable_after / timedelta(days=1)
            await self.disable(endpoint, f"failing since {since.isoformat()} ({days:g} days)")

    def _retry_policy(self, answer: Answer) -> Any:
        if answer.retry_after is None:
            return None
        cap = self.config.retry_after_cap
        return FixedWait.after(
            self.config.schedule, min(timedelta(seconds=answer.retry_after), cap)
        )

    async def _failing_since(self, endpoint_id: uuid.UUID, now: datetime) -> datetime | None:
        query = _Q["endpoint_failing"]
        try:
            since: datetime | None = await self.pool.fetchval(
                query.numbered, *query.args({"id": endpoint_id, "now": now})
            )
        except (asyncpg.PostgresError, OSError) as exc:
            raise StoreError(f"PostgreSQL failed marking endpoint failing: {exc}") from exc
        return since

    async def disable(self, endpoint: Endpoint, reason: str) -> bool:
        """Disable ``endpoint`` and tell its tenant with a ``WebhookEndpointDisabled`` event in
        the same transaction; False when it was disabled already (told once)."""
        from tether.outbox.producer import add_event

        now = self.clock.now()
        query = _Q["endpoint_disable"]
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                query.numbered, *query.args({"id": endpoint.id, "reason": reason, "now": now})
            )
            if row is None:
                return False
            await add_event(
                conn,
                DISABLED_EVENT,
                {"endpoint_id": str(endpoint.id), "url": row["url"], "reason": reason},
                tenant_id=row["tenant_id"] or None,
                aggregate_type="WebhookEndpoint",
                aggregate_id=str(endpoint.id),
            )
        self._cache.pop(endpoint.id, None)
        log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
        return True

    async def _execute(self, name: str, values: dict[str, Any]) -> None:
        query = _Q[name]
        try:
            await self.pool.execute(query.numbered, *query.args(values))
        except (asyncpg.PostgresError, OSError) as exc:
            raise StoreError(f"PostgreSQL failed during {name}: {exc}") from exc


async def _wait(stop: asyncio.Event, other: asyncio.Event | None, timeout: float) -> None:
    waits = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waits.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
