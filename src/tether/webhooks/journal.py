"""The delivery log's writer: attempts and completions, settled in batches.

A success costs the dispatcher no round trip of its own: it is queued here and a flush writes
every queued attempt in one statement and completes every queued delivery in another (the
engine's ``complete_many``, which checks each lease token). A process that dies first has
settled nothing; its deliveries are claimed again when their lease expires and sent with the
same ``webhook-id``, which is the at-least-once promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from tether.core.errors import StoreError
from tether.core.waiting import wait_set
from tether.queue.ports import Claimed
from tether.queue.postgres import PostgresQueue
from tether.store.sqlfile import queries
from tether.webhooks.sender import Answer

log = logging.getLogger("tether.webhooks.journal")
_INSERT = queries("tether.webhooks", "postgres")["attempts_insert"]
FLUSH_EVERY = 0.005  # seconds a success may wait to share a flush
FLUSH_AT = 256  # queued entries that trigger a flush at once


@dataclass(frozen=True, slots=True)
class _Row:
    claimed: Claimed
    answer: Answer
    at: datetime
    outcome: str


class Journal:
    def __init__(self, pool: asyncpg.Pool, engine: PostgresQueue) -> None:
        self.pool = pool
        self.engine = engine  # any queue of the deliveries table: completions go by seq
        self._rows: list[_Row] = []
        self._done: list[Claimed] = []
        # Successes a flush is completing right now: still ours until it returns.
        self._completing: list[Claimed] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def succeeded(self, claimed: Claimed, answer: Answer, at: datetime) -> None:
        self._rows.append(_Row(claimed, answer, at, "ok"))
        self._done.append(claimed)
        self._wake.set()

    def attempted(self, claimed: Claimed, answer: Answer, at: datetime, outcome: str) -> None:
        self._rows.append(_Row(claimed, answer, at, outcome))
        self._wake.set()

    def pending(self) -> list[Claimed]:
        """The successes queued or being completed (the dispatcher renews their leases).

        Those a flush is completing count until it returns: a completion that waits on a busy
        pool for longer than the lease's remainder would otherwise let the lease lapse, and the
        delivery would be claimed and sent again by a live dispatcher."""
        return [*self._done, *self._completing]

    async def flush(self) -> None:
        async with self._lock:
            rows, self._rows = self._rows, []
            done, self._done = self._done, []
            if done:
                self._completing = done
                try:
                    lost = await self.engine.complete_many(done)
                finally:
                    self._completing = []
                if lost:
                    log.warning(
                        "%d deliveries were reclaimed before their success was settled", len(lost)
                    )
            if rows:
                await self._insert(rows)

    async def _insert(self, rows: list[_Row]) -> None:
        def col(get: Any) -> list[Any]:
            return [get(r) for r in rows]

        values: dict[str, object] = {
            "delivery_ids": col(lambda r: r.claimed.item.id),
            "endpoint_ids": col(lambda r: r.claimed.item.extra["endpoint_id"]),
            "tenant_ids": col(lambda r: r.claimed.item.extra["tenant_id"]),
            "event_ids": col(lambda r: r.claimed.item.extra["event_id"]),
            "attempts": col(lambda r: max(r.claimed.item.attempts, 1)),
            "ats": col(lambda r: r.at),
            "outcomes": col(lambda r: r.outcome),
            "status_codes": col(lambda r: r.answer.status),
            "latencies": col(lambda r: r.answer.latency_ms),
            "responses": col(lambda r: r.answer.response),
            "errors": col(lambda r: r.answer.error),
        }
        try:
            await self.pool.execute(_INSERT.numbered, *_INSERT.args(values))
        except (asyncpg.PostgresError, OSError) as exc:
            raise StoreError(f"PostgreSQL failed writing the delivery log: {exc}") from exc

    async def run(self, stop: asyncio.Event) -> None:
        """Flush while the dispatcher runs; the last flush happens after ``stop``."""
        while not stop.is_set():
            await wait_set(self._wake, 0.25)
            self._wake.clear()
            if len(self._rows) < FLUSH_AT:
                await asyncio.sleep(FLUSH_EVERY)
            try:
                await self.flush()
            except StoreError as exc:
                log.warning("delivery log flush failed (retried at lease expiry): %s", exc)
        with contextlib.suppress(StoreError):
            await self.flush()
