"""What both adapters share: lease checks, settling outcomes, filters, batching.

An adapter supplies a handful of primitives (run a named statement, claim, enqueue); the
rules of the engine live here once, so PostgreSQL and SQLite cannot drift apart.
"""

from __future__ import annotations

import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tether.core import lifecycle
from tether.core.backoff import RetryPolicy
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigError, LeaseLostError, NotFoundError
from tether.core.lifecycle import Outcome
from tether.queue import codec
from tether.queue.ports import (
    Claimed,
    Item,
    ItemFilter,
    ItemState,
    NewItem,
    Progress,
    QueueStats,
)
from tether.queue.spec import TableSpec, where
from tether.store.dialect import Dialect

DEFAULT_BATCH = 5000
_FINISHED = (ItemState.DONE, ItemState.DEAD)


class Engine(ABC):
    dialect: Dialect

    def __init__(
        self,
        *,
        spec: TableSpec,
        queue: str | None,
        policy: RetryPolicy | None,
        clock: Clock | None,
        keep_done: bool,
        key_ordering: bool,
        rng: random.Random | None,
    ) -> None:
        if queue is not None and not spec.has_queue_column:
            raise ConfigError(f"table {spec.name} has no queue column: pass queue=None")
        self.spec = spec
        self.queue = queue
        self.policy = policy or RetryPolicy()
        self.clock = clock or SYSTEM_CLOCK
        self.keep_done = keep_done
        self.key_ordering = key_ordering
        self._rng = rng or random.Random()

    # -- primitives each adapter provides -------------------------------------------------
    @abstractmethod
    async def _rows(
        self, name: str, params: dict[str, Any], parts: Mapping[str, str] | None = None
    ) -> list[Mapping[str, Any]]: ...

    @abstractmethod
    async def _count(
        self, name: str, params: dict[str, Any], parts: Mapping[str, str] | None = None
    ) -> int: ...

    @abstractmethod
    def _item(self, row: Mapping[str, Any]) -> Item: ...

    @abstractmethod
    async def enqueue(self, items: Sequence[NewItem], *, tx: Any = None) -> list[uuid.UUID]: ...

    @abstractmethod
    async def claim(self, limit: int, *, lease: timedelta, worker: str) -> list[Claimed]: ...

    @abstractmethod
    async def close(self) -> None: ...

    # -- lease-checked transitions ----------------------------------------------------------
    def _require_leases(self, what: str) -> None:
        if not self.spec.leased:
            raise ConfigError(
                f"{what}: rows of {self.spec.name} are never leased (the relay delivers them "
                "under row locks); use this adapter for list, replay, purge, sweep and stats"
            )

    def _lease_params(self, claimed: Claimed) -> dict[str, Any]:
        self._require_leases("lease operations")
        return {"seq": claimed.item.seq, "token": claimed.lease_token}

    @staticmethod
    def _lost(claimed: Claimed) -> LeaseLostError:
        return LeaseLostError(
            f"item {claimed.id} is no longer held under lease {claimed.lease_token}: the lease "
            "expired and the item was claimed again, or it was finished or purged meanwhile"
        )

    async def heartbeat(self, claimed: Claimed, lease: timedelta) -> Claimed:
        if lease <= timedelta(0):
            raise ConfigError(f"lease must be positive, got {lease}")
        until = self.clock.now() + lease
        rows = await self._rows("heartbeat", {**self._lease_params(claimed), "lease_until": until})
        if not rows:
            raise self._lost(claimed)
        return Claimed(claimed.item, claimed.lease_token, until)

    async def complete(self, claimed: Claimed) -> None:
        name = "complete_keep" if self.keep_done else "complete_delete"
        params = {**self._lease_params(claimed)}
        if self.keep_done:
            params["now"] = self.clock.now()
        if await self._count(name, params) == 0:
            raise self._lost(claimed)

    async def complete_many(self, batch: Sequence[Claimed]) -> list[Claimed]:
        """Complete a batch; returns the items whose lease was lost (the rest are done)."""
        lost = []
        for claimed in batch:
            try:
                await self.complete(claimed)
            except LeaseLostError:
                lost.append(claimed)
        return lost

    async def fail(
        self, claimed: Claimed, error: str, *, policy: RetryPolicy | None = None
    ) -> ItemState:
        move = self._decide(claimed, Outcome.RETRY, error, policy=policy)
        await self._settle(claimed, move)
        return move.state

    async def dead_letter(self, claimed: Claimed, error: str) -> None:
        await self._settle(claimed, self._decide(claimed, Outcome.PERMANENT, error))

    async def defer(
        self,
        claimed: Claimed,
        *,
        until: datetime | None = None,
        delay: timedelta | None = None,
        reason: str | None = None,
    ) -> None:
        wait = self._defer_wait(until, delay)
        await self._settle(claimed, self._decide(claimed, Outcome.DEFER, reason, delay=wait))

    def _defer_wait(self, until: datetime | None, delay: timedelta | None) -> timedelta:
        both = "defer takes exactly one of until= (a time) or delay= (a duration)"
        if until is not None:
            if delay is not None:
                raise ConfigError(f"{both}, not both")
            if until.tzinfo is None:
                raise ConfigError(f"defer until= must be timezone-aware, got {until!r}")
            return max(until - self.clock.now(), timedelta(0))
        if delay is None:
            raise ConfigError(f"{both}; got neither")
        if delay < timedelta(0):
            raise ConfigError(f"defer delay must not be negative, got {delay}")
        return delay

    def _decide(
        self,
        claimed: Claimed,
        outcome: Outcome,
        error: str | None,
        *,
        policy: RetryPolicy | None = None,
        delay: timedelta | None = None,
    ) -> lifecycle.Transition:
        # The claim counted this attempt already, so the item's count is this attempt's number.
        return lifecycle.decide(
            outcome,
            attempt=max(claimed.item.attempts, 1),
            max_attempts=claimed.item.max_attempts,
            policy=policy or self.policy,
            now=self.clock.now(),
            error=error,
            delay=delay,
            rng=self._rng,
        )

    async def _settle(self, claimed: Claimed, move: lifecycle.Transition) -> None:
        now = self.clock.now()
        params = {
            **self._lease_params(claimed),
            "state": move.state.value,
            "attempts": move.attempts,
            "available_at": now + move.delay,
            "finished_at": now if move.finished else None,
            "error": move.error,
            "entry": move.entry_json(),
        }
        if await self._count("settle", params) == 0:
            raise self._lost(claimed)

    def _require_queue(self, what: str) -> None:
        # queue=None on a many-queue table is an admin view over all queues: it cannot work.
        if self.spec.has_queue_column and self.queue is None:
            raise ConfigError(f"{what} needs a queue: create the adapter with queue='name'")

    def _claim_params(self, limit: int, lease: timedelta, worker: str) -> dict[str, Any]:
        self._require_leases("claim")
        self._require_queue("claim")
        if limit < 1:
            raise ConfigError(f"claim limit must be at least 1, got {limit}")
        if lease <= timedelta(0):
            raise ConfigError(f"lease must be positive, got {lease}")
        now = self.clock.now()
        params: dict[str, Any] = {
            "now": now,
            "now_iso": now.isoformat(),
            "limit": limit,
            "lease_until": now + lease,
            "token": uuid.uuid4(),
            "worker": worker,
            "default_max": self.policy.max_attempts,
            "expired_error": lifecycle.LEASE_EXPIRED,
        }
        if self.spec.has_queue_column:
            params["queue"] = self.queue
        return params

    def _claimed(self, rows: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> list[Claimed]:
        items = sorted((self._item(r) for r in rows), key=lambda i: i.seq)
        return [Claimed(i, params["token"], params["lease_until"]) for i in items]

    # -- admin: dead-letter queue, retention, stats -------------------------------------------
    def _where(
        self, f: ItemFilter | None, states: tuple[ItemState, ...] | None
    ) -> tuple[str, dict[str, Any]]:
        return where(self.spec, f or ItemFilter(), self.dialect, queue=self.queue, states=states)

    async def list(
        self, filter: ItemFilter | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[Item]:
        clause, params = self._where(filter, None)
        rows = await self._rows(
            "list", {**params, "limit": limit, "offset": offset}, {"where": clause}
        )
        return [self._item(r) for r in rows]

    async def count(
        self, filter: ItemFilter | None = None, *, states: tuple[ItemState, ...] | None = None
    ) -> int:
        """How many items match (``states`` narrows further), e.g. to confirm a bulk action."""
        clause, params = self._where(filter, states)
        rows = await self._rows("count", params, {"where": clause})
        return int(rows[0]["n"])

    async def get(self, id: uuid.UUID) -> Item:
        rows = await self._rows("get", {"id": id})
        if not rows:
            raise NotFoundError(f"no item with id {id} in {self.spec.name}")
        return self._item(rows[0])

    async def get_dead(self, id: uuid.UUID) -> Item:
        """The dead item with this id, read through an index on every table (:meth:`get`
        reads the whole outbox: it indexes the ids of dead rows only)."""
        rows = await self._rows("get_dead", {"id": id})
        if not rows:
            raise NotFoundError(f"no dead item with id {id} in {self.spec.name}")
        return self._item(rows[0])

    async def _archive(self, archive: str, clause: str, params: dict[str, Any]) -> int:
        """Move one batch of finished rows into ``archive``; returns how many moved."""
        return await self._count("sweep_archive", params, {"where": clause, "archive": archive})

    async def _batched(
        self,
        name: str,
        clause: str,
        params: dict[str, Any],
        progress: Progress | None,
        archive: str | None = None,
    ) -> int:
        total = 0
        while True:
            values = {**params, "batch": DEFAULT_BATCH}
            if archive is None:
                n = await self._count(name, values, {"where": clause})
            else:
                n = await self._archive(archive, clause, values)
            total += n
            if progress is not None and n:
                progress(n)
            if n < DEFAULT_BATCH:
                return total

    async def replay(
        self, filter: ItemFilter | None = None, *, progress: Progress | None = None
    ) -> int:
        clause, params = self._where(filter, (ItemState.DEAD,))
        return await self._batched("replay", clause, {**params, "now": self.clock.now()}, progress)

    async def purge(
        self, filter: ItemFilter | None = None, *, progress: Progress | None = None
    ) -> int:
        f = filter or ItemFilter()
        states = None if f.state is not None else (ItemState.DEAD,)
        clause, params = self._where(f, states)
        return await self._batched("purge", clause, params, progress)

    async def sweep(
        self,
        older_than: timedelta,
        *,
        states: tuple[ItemState, ...] = _FINISHED,
        archive_to: str | None = None,
        progress: Progress | None = None,
        filter: ItemFilter | None = None,
    ) -> int:
        """Retention. With ``archive_to`` the rows are moved (same transaction) into that table,
        which must have this table's columns in the same order, e.g. created with
        ``CREATE TABLE tether_items_archive (LIKE tether_items)``. ``filter`` narrows the
        sweep (e.g. one tenant's rows: ``extra={"tenant_id": ...}``)."""
        if not set(states) <= set(_FINISHED):
            raise ConfigError("sweep removes finished items only: states must be done and/or dead")
        if archive_to is not None:
            archive_to = TableSpec(archive_to).name  # the same identifier check as any table
            if archive_to == self.spec.name:
                raise ConfigError("sweep cannot archive a table into itself")
        clause, params = self._where(filter, states)
        cutoff: datetime = self.clock.now() - older_than
        values = {**params, "cutoff": cutoff}
        return await self._batched("sweep", clause, values, progress, archive_to)

    async def stats(self) -> QueueStats:
        now = self.clock.now()
        clause, params = self._where(None, None)
        row = (await self._rows("stats", {**params, "now": now}, {"where": clause}))[0]
        oldest = row["oldest_pending"]
        return QueueStats(
            pending=int(row["pending"] or 0),
            claimed=int(row["claimed"] or 0),
            dead=int(row["dead"] or 0),
            done=int(row["done"] or 0),
            due=int(row["due"] or 0),
            retrying=int(row["retrying"] or 0),
            oldest_pending_age=None if oldest is None else now - codec.iso_to_dt(oldest),
        )
