"""The consumer runner: each message to its handler once, in the inbox's transaction.

For every delivery the runner decides, and the source (the broker adapter) carries it out:

* not a Tether event -> dead-letter at once (``undecodable``): redelivering cannot fix it;
  with ``catalog=``, so is an event the catalog cannot upcast to its current version;
* the inbox has seen the event id -> ack without calling the handler (a duplicate);
* the handler returns -> its transaction commits with the inbox row, then ack;
* the handler raises -> retry after ``policy.delay(n)``, or dead-letter once
  ``policy.max_deliveries`` hand-outs have failed;
* the transaction itself fails (database down, commit refused) -> retry after a short pause;
  a store outage never dead-letters a message.

The commit comes before the ack, so a crash between the two makes the broker hand the message
out again, and the inbox row, committed with the handler's writes, turns it into a plain ack.
Messages of one partition key in a batch are handled one after the other, in the order
received; different keys run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tether.consume import deadletter
from tether.consume.decode import UndecodableError, event_from
from tether.consume.policy import RedeliveryPolicy
from tether.consume.port import ConsumerSource, Delivery, Failure
from tether.core.envelope import Event
from tether.core.errors import BrokerUnavailableError, ConfigError, EventValidationError
from tether.core.waiting import wait_set
from tether.ops import instruments, tracing
from tether.ops.runners import RunnerRegistry, default_name, maybe_heartbeat
from tether.outbox.inbox import Inbox

if TYPE_CHECKING:
    from tether.catalog import EventCatalog

log = logging.getLogger("tether.consume")

Handler = Callable[[Event, Any], Awaitable[None]]
"""``async def handle(event, tx)``: ``tx`` is the transaction the inbox row is written in."""
Transaction = Callable[[], AbstractAsyncContextManager[Any]]
"""Opens a transaction and yields what the inbox and handler write through (a SQLAlchemy
``AsyncConnection`` from ``engine.begin``, an asyncpg connection in a transaction...). It must
commit when the block ends normally and roll back when it raises."""
Verdict = Literal["acked", "duplicate", "retried", "dead"]

_HANDLED = instruments.counter(
    "tether_consumer_messages_total",
    "Messages a consumer finished with, by verdict.",
    ["consumer", "verdict"],
)


STORE_RETRY_DELAY = 1.0
"""Seconds before a message whose transaction could not be run is handed out again."""


class _HandlerFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the runner did with one delivery."""

    verdict: Verdict
    event_id: str | None
    error: str | None = None


class Consumer:
    """Runs ``handler`` for every message ``source`` hands out."""

    def __init__(
        self,
        source: ConsumerSource,
        handler: Handler,
        *,
        transaction: Transaction,
        inbox: Inbox | None = None,
        policy: RedeliveryPolicy | None = None,
        batch_size: int = 32,
        wait: float = 1.0,
        store_pause: float = STORE_RETRY_DELAY,
        rng: random.Random | None = None,
        catalog: EventCatalog | None = None,
        registry: RunnerRegistry | None = None,
        name: str | None = None,
        registry_interval_s: float = 10.0,
    ) -> None:
        """``registry``: :meth:`run` registers the consumer there (as ``name``, by default
        ``<source>@<host>:<pid>``) and beats its counters every ``registry_interval_s`` s."""
        if not 1 <= batch_size <= 10_000:
            raise ConfigError(f"batch_size must be 1 to 10000, got {batch_size!r}")
        if not 0 < wait <= 60:
            raise ConfigError(f"wait must be above 0 and at most 60 seconds, got {wait!r}")
        self.source = source
        self.handler = tracing.traced_handler(handler, source.name)  # spans (otel extra)
        self.transaction = transaction
        self.inbox = inbox or Inbox(source.name)
        self.policy = policy or RedeliveryPolicy()
        self.batch_size = batch_size
        self.wait = wait
        self.store_pause = store_pause
        self._rng = rng or random.Random()
        self.catalog = catalog
        self.registry = registry
        self.name = name or f"{source.name}@{default_name()}"
        self.registry_interval_s = registry_interval_s
        self.counts: Counter[str] = Counter()  # outcomes by verdict, for the runner registry

    def runner_stats(self) -> dict[str, float]:
        """What the consumer reports to the runner registry at each beat."""
        return {
            "handled_total": self.counts["acked"],
            "duplicate_total": self.counts["duplicate"],
            "retried_total": self.counts["retried"],
            "dead_total": self.counts["dead"],
        }

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Receive and handle until ``stop`` is set; a broker outage only pauses the loop."""
        async with maybe_heartbeat(
            self.registry,
            "consumer",
            self.name,
            interval_s=self.registry_interval_s,
            stats=self.runner_stats,
        ):
            await self._serve(stop or asyncio.Event())

    async def _serve(self, stop: asyncio.Event) -> None:
        pause = 0.25
        while not stop.is_set():
            try:
                await self.run_once()
                pause = 0.25
            except BrokerUnavailableError as exc:
                log.warning(
                    "consumer %s: broker unavailable (%s); retrying in %.2fs",
                    self.source.name,
                    exc,
                    pause,
                )
                await wait_set(stop, pause)
                pause = min(pause * 2, 5.0)

    async def run_once(self) -> list[Outcome]:
        """One ``receive`` and the handling of what it returned."""
        deliveries = await self.source.receive(self.batch_size, self.wait)
        if not deliveries:
            return []
        runs: dict[str | None, list[Delivery]] = {}
        for index, delivery in enumerate(deliveries):
            key = delivery.partition_key
            # Unkeyed messages do not share an order: each is its own run.
            runs.setdefault(key if key is not None else f"\0{index}", []).append(delivery)
        results = await asyncio.gather(*(self._run(run) for run in runs.values()))
        return [outcome for run in results for outcome in run]

    async def _run(self, run: Sequence[Delivery]) -> list[Outcome]:
        return [await self.process(delivery) for delivery in run]

    async def process(self, delivery: Delivery) -> Outcome:
        """Decide on one delivery and have the source carry the verdict out."""
        try:
            event = self._decode(delivery)
        except UndecodableError as exc:
            await self.source.dead_letter(
                delivery, self._failure("undecodable", str(exc), delivery)
            )
            return self._count(Outcome("dead", delivery.event_id, str(exc)))
        try:
            handled = await self._handle(event)
        except _HandlerFailed as failed:
            return await self._failed(delivery, event, failed.reason)
        except Exception as exc:
            # The database, not the message: opening, the inbox row or the commit failed. Such a
            # failure never dead-letters a message; it comes back after a short pause.
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "consumer %s: event %s not handled, the store failed (%s)",
                self.source.name,
                event.id,
                reason,
            )
            await self.source.retry_later(delivery, self.store_pause)
            return self._count(Outcome("retried", str(event.id), f"store: {reason}"))
        await self.source.ack(delivery)
        return self._count(Outcome("acked" if handled else "duplicate", str(event.id)))

    def _decode(self, delivery: Delivery) -> Event:
        event = event_from(delivery.attributes, delivery.data)
        if self.catalog is None:
            return event
        try:
            # Handlers only ever see the current version: older ones are upcast here. An
            # upcaster that fails, or a result the current model refuses, cannot get better
            # on redelivery, so the message is undecodable.
            return self.catalog.upcast(event)
        except EventValidationError as exc:
            raise UndecodableError(f"event catalog: {exc}") from None

    async def _handle(self, event: Event) -> bool:
        async with self.transaction() as tx:
            if not await self.inbox.first_time(tx, event.id):
                return False
            try:
                await self.handler(event, tx)
            except Exception as exc:  # the handler's failure is the message's, not the runner's
                raise _HandlerFailed(f"{type(exc).__name__}: {exc}") from exc
            return True

    async def _failed(self, delivery: Delivery, event: Event, reason: str) -> Outcome:
        if self.policy.exhausted(delivery.deliveries):
            await self.source.dead_letter(delivery, self._failure("handler", reason, delivery))
            return self._count(Outcome("dead", str(event.id), reason))
        delay = self.policy.delay(delivery.deliveries, self._rng)
        log.info(
            "consumer %s: event %s failed on delivery %d (%s); again in %.1fs",
            self.source.name,
            event.id,
            delivery.deliveries,
            reason,
            delay,
        )
        await self.source.retry_later(delivery, delay)
        return self._count(Outcome("retried", str(event.id), reason))

    def _failure(
        self, kind: Literal["handler", "undecodable"], reason: str, delivery: Delivery
    ) -> Failure:
        return Failure(kind, deadletter.clip_reason(reason), delivery.deliveries, deadletter.now())

    def _count(self, outcome: Outcome) -> Outcome:
        _HANDLED.labels(self.source.name, outcome.verdict).inc()
        self.counts[outcome.verdict] += 1
        return outcome
