"""Broker hand-off: a queue whose jobs are published to a broker through a sink, not run here.

Some systems keep the job's durable, transactional enqueue in PostgreSQL but let another
system run it (an SQS consumer, a JetStream consumer). :class:`HandoffRunner` claims the jobs
of such queues under the same lease as :class:`~tether.jobs.JobWorker`, turns each into an
envelope :class:`~tether.core.envelope.Event` and publishes it through any :class:`Sink`; the
sink's answer settles the job through the one lifecycle (:mod:`tether.core.lifecycle`):

* ``OK`` → done (the broker holds it now);
* failed, retryable → retried with the job's backoff, an attempt spent (dead past its limit);
* failed, not retryable → dead at once, with the broker's reason;
* :meth:`Outcome.deferred` → pending again after the wait the sink gave, no attempt spent;
* :class:`SinkUnavailableError` (the broker is down) → every job of the call is deferred by
  ``unavailable_wait``, no attempt spent, and the runner waits that long before claiming again.

The event's id is the job's id, so a job published twice (its lease ran out during a publish
and it was claimed again) is stored once by a broker that de-duplicates by id (JetStream
``Nats-Msg-Id``, SQS FIFO ``MessageDeduplicationId``, AMQP ``message-id``). Its type is the
job's name, its topic the queue, its data the job's arguments as stored, its partition key the
job's de-duplication key, else the queue (else the job's id with ``ordered=False``). The
sink contract wants no two events of one call to share a partition key, so a batch is
published in rounds of distinct keys, one after the other: jobs of one key reach the broker
in claim order.

A job handed off ends ``done`` with no result; ``tether jobs list/show/retry/cancel`` see and
act on hand-off queues like any other. Run the runner next to (or instead of) a worker; a
queue must not be served by both, or a worker would run jobs meant for the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tether.core.envelope import Event, make_event
from tether.core.errors import (
    ConfigError,
    EventValidationError,
    LeaseLostError,
    SinkUnavailableError,
    StoreError,
)
from tether.jobs.client import Jobs
from tether.queue import Claimed
from tether.queue.worker import default_worker_name
from tether.sinks.base import Outcome, Sink

log = logging.getLogger("tether.jobs.handoff")

SOURCE = "tether.jobs"
# Job arguments already passed the jobs table; the broker, not the envelope, sets the limit.
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


@dataclass
class HandoffStats:
    published: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    unavailable: int = 0  # calls that found the broker down
    lost: int = 0  # leases lost before the outcome was written


def job_event(claimed: Claimed, *, ordered: bool = True) -> Event:
    """The envelope a claimed job is published as (raises :class:`EventValidationError`).
    Its partition key is the job's de-duplication key, else the queue (``ordered``) or the
    job's own id (not ordered: every job its own key)."""
    item = claimed.item
    queue = str(item.queue)
    fallback = queue if ordered else str(item.id)
    return make_event(
        str(item.extra["name"]),
        item.payload,
        id=item.id,
        topic=queue,
        partition_key=item.extra.get("dedup_key") or fallback,
        tenant_id=item.extra.get("tenant_id"),
        source=SOURCE,
        created_at=item.created_at,
        max_payload_bytes=MAX_PAYLOAD_BYTES,
    )


def rounds(batch: Sequence[tuple[Claimed, Event]]) -> list[list[tuple[Claimed, Event]]]:
    """Split ``batch`` into calls whose events have distinct partition keys, keeping the
    order of each key: the n-th job of a key goes in the n-th call."""
    calls: list[list[tuple[Claimed, Event]]] = []
    seen: dict[str | None, int] = {}
    for entry in batch:
        key = entry[1].partition_key
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(calls):
            calls.append([])
        calls[n].append(entry)
    return calls


class HandoffRunner:
    """Hands the jobs of ``queues`` to ``sink``. Embeddable: ``await runner.run(stop)``;
    ``run_once()`` claims and publishes one batch per queue (tests, scripts).

    ``lease`` must outlast a publish (the sink's own timeouts); ``unavailable_wait`` is how
    long jobs wait, unspent, while the broker is down. ``ordered=False`` gives each job
    without a de-duplication key its own partition key (its id): a batch then goes out in one
    call instead of one call per job, ~20x faster, with no order between jobs.
    """

    def __init__(
        self,
        jobs: Jobs,
        sink: Sink,
        *,
        queues: Sequence[str],
        batch: int = 100,
        lease: timedelta = timedelta(minutes=1),
        unavailable_wait: timedelta = timedelta(seconds=5),
        poll_interval: float = 0.5,
        recover_every: timedelta = timedelta(seconds=5),
        name: str | None = None,
        ordered: bool = True,
    ) -> None:
        if not queues:
            raise ConfigError("a hand-off runner needs at least one queue")
        workers = {j.queue for j in jobs.registry if not j.handoff}
        for queue in sorted(workers & set(queues)):
            raise ConfigError(
                f"queue {queue!r} holds jobs a worker runs: mark its jobs @job(handoff=True) "
                "to hand them to a broker"
            )
        if batch < 1:
            raise ConfigError(f"batch must be at least 1, got {batch!r}")
        if lease <= timedelta(0) or poll_interval <= 0:
            raise ConfigError("lease and poll_interval must be positive")
        if unavailable_wait < timedelta(0):
            raise ConfigError(f"unavailable_wait must not be negative, got {unavailable_wait}")
        self.jobs = jobs
        self.sink = sink
        self.queues = list(dict.fromkeys(queues))
        self.batch = batch
        self.lease = lease
        self.unavailable_wait = unavailable_wait
        self.poll_interval = poll_interval
        self.recover_every = recover_every
        self.name = name or default_worker_name()
        self.ordered = ordered
        self.stats = HandoffStats()

    # -- one batch ---------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim up to ``batch`` jobs per queue and hand them off; how many were claimed.
        Raises :class:`SinkUnavailableError` (after deferring the jobs) if the broker is down."""
        total = 0
        for queue in self.queues:
            claimed = await self.jobs.store.claim(
                queue, self.batch, lease=self.lease, worker=self.name
            )
            total += len(claimed)
            if claimed:
                await self._hand_off(claimed)
        return total

    async def _hand_off(self, claimed: Sequence[Claimed]) -> None:
        ready: list[tuple[Claimed, Event]] = []
        for c in claimed:
            try:
                ready.append((c, job_event(c, ordered=self.ordered)))
            except EventValidationError as exc:  # e.g. a job name no broker subject can carry
                await self._settle(c, Outcome.failed(f"cannot be handed off: {exc}",
                                                     retryable=False))  # fmt: skip
        calls = rounds(ready)
        for i, call in enumerate(calls):
            try:
                outcomes = await self.sink.publish([e for _, e in call])
            except SinkUnavailableError as exc:
                self.stats.unavailable += 1
                rest = [c for later in calls[i:] for c, _ in later]
                reason = f"broker unavailable (sink {self.sink.name!r}): {exc}"
                await asyncio.gather(*(self._defer(c, self.unavailable_wait, reason)
                                       for c in rest))  # fmt: skip
                raise
            except Exception as exc:  # a sink bug or a poison event: an attempt each, as a job
                error = f"sink {self.sink.name!r} raised {type(exc).__name__}: {exc}"
                await asyncio.gather(*(self._settle(c, Outcome.failed(error)) for c, _ in call))
                continue
            if len(outcomes) != len(call):  # a broken adapter: keep the jobs, spend nothing
                rest = [c for later in calls[i:] for c, _ in later]
                reason = f"sink {self.sink.name!r} broke its contract (outcome count)"
                await asyncio.gather(*(self._defer(c, self.unavailable_wait, reason)
                                       for c in rest))  # fmt: skip
                raise ConfigError(
                    f"sink {self.sink.name!r} answered {len(outcomes)} outcomes for "
                    f"{len(call)} events"
                )
            done = [c for (c, _), o in zip(call, outcomes, strict=True) if o.ok]
            if done:
                lost = await self.jobs.store.complete_many([(c, None) for c in done])
                self.stats.lost += len(lost)
                self.stats.published += len(done) - len(lost)
            await asyncio.gather(*(self._settle(c, o) for (c, _), o in
                                   zip(call, outcomes, strict=True) if not o.ok))  # fmt: skip

    async def _settle(self, c: Claimed, outcome: Outcome) -> None:
        """A sink's refusal, written through the engine's lease-checked transitions."""
        error = outcome.error or "refused by the sink (no reason given)"
        if outcome.defer_s is not None:
            await self._defer(c, timedelta(seconds=outcome.defer_s), error)
            return
        engine = self.jobs.store.engine
        try:
            if outcome.retryable:
                job = self.jobs.registry._jobs.get(str(c.item.extra["name"]))
                state = await engine.fail(c, error, policy=None if job is None else job.retry)
                dead = state.value == "dead"
            else:
                await engine.dead_letter(c, error)
                dead = True
        except (LeaseLostError, StoreError) as exc:
            self.stats.lost += 1
            log.warning("job %s: could not record its hand-off failure: %s", c.id, exc)
            return
        if dead:
            self.stats.dead += 1
            log.error("job %s (%s) is dead: %s", c.id, c.item.extra["name"], error)
        else:
            self.stats.retried += 1

    async def _defer(self, c: Claimed, wait: timedelta, reason: str) -> None:
        try:
            await self.jobs.store.engine.defer(c, delay=wait, reason=reason)
        except (LeaseLostError, StoreError) as exc:
            self.stats.lost += 1
            log.warning("job %s: could not defer it: %s", c.id, exc)
            return
        self.stats.deferred += 1

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Hand off until ``stop`` is set. A claim or publish in progress finishes first (the
        sink's timeouts bound it); stale jobs of any queue are recovered every
        ``recover_every``, as a worker does."""
        loop = asyncio.get_running_loop()
        next_recovery = 0.0
        while not stop.is_set():
            wait = self.poll_interval
            if loop.time() >= next_recovery:
                next_recovery = loop.time() + self.recover_every.total_seconds()
                try:
                    await self.jobs.store.recover()
                except StoreError as exc:
                    log.warning("hand-off %s: stale-job recovery failed: %s", self.name, exc)
            try:
                if await self.run_once() >= self.batch:
                    wait = 0  # more is waiting
            except SinkUnavailableError as exc:
                log.warning("hand-off %s: broker down, jobs deferred: %s", self.name, exc)
                wait = max(self.unavailable_wait.total_seconds(), self.poll_interval)
            except StoreError as exc:
                log.warning("hand-off %s: claim failed, retrying: %s", self.name, exc)
                wait = max(self.poll_interval, 1.0)
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)


__all__ = ["HandoffRunner", "HandoffStats", "job_event", "rounds"]
