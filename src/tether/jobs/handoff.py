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

While a batch is published and settled its jobs are heartbeated like a worker's running
jobs (:class:`~tether.jobs.held.HeldJobs`), so a publish slower than the lease is not taken for
a dead runner and recovered; a job the heartbeat finds recovered or cancelled elsewhere is left
out of the rounds not yet published. Serving (``run``), the completions of a full batch's last
round and the claim of the queue's next batch are one statement (``settle_and_claim``); that
batch is heartbeated while it waits its turn and given back with no attempt spent at stop.

A job handed off ends ``done`` with no result; ``tether jobs list/show/retry/cancel`` see and
act on hand-off queues like any other. Run the runner next to (or instead of) a worker; a
queue must not be served by both, or a worker would run jobs meant for the broker.
"""

from __future__ import annotations

import asyncio
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
from tether.core.waiting import wait_set
from tether.jobs.client import Jobs
from tether.jobs.held import HeldJobs, heartbeat_period
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
    lost: int = 0  # leases lost before the outcome was written, or before the publish


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

    Held jobs are heartbeated every ``heartbeat_every`` (default: a third of ``lease``, at
    most 5 s), so ``lease`` is how long the jobs of a runner that died wait before stale-job
    recovery hands them out again, not a bound on a publish. ``unavailable_wait`` is how long
    jobs wait, unspent, while the broker is down. ``ordered=False`` gives each job without a
    de-duplication key its own partition key (its id): a batch then goes out in one call
    instead of one call per job, ~20x faster, with no order between jobs.
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
        heartbeat_every: timedelta | None = None,
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
        every = heartbeat_period(lease, heartbeat_every)
        self.held = HeldJobs(jobs.store, lease=lease, every=every, owner=f"hand-off {self.name}")
        # Serving: a queue's next batch, claimed in the statement that settled its last one.
        self._ahead: dict[str, list[Claimed]] = {}
        self._stop: asyncio.Event | None = None

    # -- one batch ---------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim up to ``batch`` jobs per queue and hand them off; how many were claimed.
        Raises :class:`SinkUnavailableError` (after deferring the jobs) if the broker is down."""
        total = 0
        async with self.held.beating():
            for queue in self.queues:
                if queue in self._ahead:
                    claimed = self._ahead.pop(queue)
                else:
                    claimed = await self.jobs.store.claim(
                        queue, self.batch, lease=self.lease, worker=self.name
                    )
                    self.held.add(claimed)
                total += len(claimed)
                try:
                    await self._hand_off(queue, claimed)
                finally:
                    # Settled, or left to stale-job recovery when an error cut the batch
                    # short: never heartbeated on by a runner that no longer works on them.
                    for c in claimed:
                        self.held.let_go(c)
        return total

    def _claims_ahead(self, claimed: Sequence[Claimed]) -> bool:
        """Whether the last round's completions also claim the queue's next batch: only while
        serving and not stopping, and after a full batch (more is likely waiting)."""
        serving = self._stop is not None and not self._stop.is_set()
        return serving and len(claimed) >= self.batch

    async def _complete(self, queue: str, done: list[Claimed], ahead: bool) -> None:
        for c in done:
            self.held.let_go(c)
        finished = [(c, None) for c in done]
        if ahead:
            lost, batch = await self.jobs.store.settle_and_claim(
                finished, queue=queue, limit=self.batch, lease=self.lease, worker=self.name
            )
            self.held.add(batch)
            self._ahead[queue] = batch
        elif done:
            lost = await self.jobs.store.complete_many(finished)
        else:
            return
        self.stats.lost += len(lost)
        self.stats.published += len(done) - len(lost)

    def _still_held(self, call: list[tuple[Claimed, Event]]) -> list[tuple[Claimed, Event]]:
        """The jobs of a round not yet published whose lease the heartbeat still finds: the
        others were recovered or cancelled meanwhile and are someone else's now."""
        kept = [(c, e) for c, e in call if self.held.holds(c)]
        self.stats.lost += len(call) - len(kept)
        return kept

    async def _hand_off(self, queue: str, claimed: Sequence[Claimed]) -> None:
        ready: list[tuple[Claimed, Event]] = []
        for c in claimed:
            try:
                ready.append((c, job_event(c, ordered=self.ordered)))
            except EventValidationError as exc:  # e.g. a job name no broker subject can carry
                await self._settle(c, Outcome.failed(f"cannot be handed off: {exc}",
                                                     retryable=False))  # fmt: skip
        calls = rounds(ready)
        ahead = self._claims_ahead(claimed)
        for i, whole in enumerate(calls):
            call = self._still_held(whole)
            if not call:
                continue
            try:
                outcomes = await self.sink.publish([e for _, e in call])
            except SinkUnavailableError as exc:
                self.stats.unavailable += 1
                rest = self._rest(call, calls[i + 1 :])
                reason = f"broker unavailable (sink {self.sink.name!r}): {exc}"
                await asyncio.gather(*(self._defer(c, self.unavailable_wait, reason)
                                       for c in rest))  # fmt: skip
                raise
            except Exception as exc:  # a sink bug or a poison event: an attempt each, as a job
                error = f"sink {self.sink.name!r} raised {type(exc).__name__}: {exc}"
                await asyncio.gather(*(self._settle(c, Outcome.failed(error)) for c, _ in call))
                continue
            if len(outcomes) != len(call):  # a broken adapter: keep the jobs, spend nothing
                rest = self._rest(call, calls[i + 1 :])
                reason = f"sink {self.sink.name!r} broke its contract (outcome count)"
                await asyncio.gather(*(self._defer(c, self.unavailable_wait, reason)
                                       for c in rest))  # fmt: skip
                raise ConfigError(
                    f"sink {self.sink.name!r} answered {len(outcomes)} outcomes for "
                    f"{len(call)} events"
                )
            done = [c for (c, _), o in zip(call, outcomes, strict=True) if o.ok]
            await self._complete(queue, done, ahead and i == len(calls) - 1)
            await asyncio.gather(*(self._settle(c, o) for (c, _), o in
                                   zip(call, outcomes, strict=True) if not o.ok))  # fmt: skip

    def _rest(
        self, call: list[tuple[Claimed, Event]], later: list[list[tuple[Claimed, Event]]]
    ) -> list[Claimed]:
        """The jobs of this call and of the later rounds still held, to give back unspent."""
        return [c for c, _ in call] + [c for r in later for c, _ in self._still_held(r)]

    async def _settle(self, c: Claimed, outcome: Outcome) -> None:
        """A sink's refusal, written through the engine's lease-checked transitions."""
        self.held.let_go(c)
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
        self.held.let_go(c)
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
        self._stop = stop
        try:
            async with self.held.beating():
                await self._serve(stop)
        finally:
            self._stop = None
            await self._give_back_ahead()

    async def _give_back_ahead(self) -> None:
        """Batches claimed ahead and never published go back at once, no attempt spent."""
        ahead = [c for batch in self._ahead.values() for c in batch]
        self._ahead.clear()
        reason = "released: its hand-off runner stopped"
        await asyncio.gather(*(self._defer(c, timedelta(0), reason) for c in ahead))

    async def _serve(self, stop: asyncio.Event) -> None:
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
                await wait_set(stop, wait)


__all__ = ["HandoffRunner", "HandoffStats", "job_event", "rounds"]
