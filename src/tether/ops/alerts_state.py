"""Where the dead-letter monitor keeps the level it alerted, per source and channel.

Kept in PostgreSQL (``tether_alert_state``): the monitor already reads the dead counts there,
the state outlives restarts, and a row lock held while an alert is sent makes several monitor
processes send each level once, with no extra service. The lock is taken with ``SKIP LOCKED``:
a monitor that finds a row held skips it for the round. If the send fails the transaction
rolls back and the level is tried again at the next check; if a monitor dies after the
channel took the alert but before its commit, the next one sends it again with the same id.

:class:`MemoryAlertState` is the same port for one process (tests, SQLite deployments,
embedding): a restart forgets the levels, so the current ones alert once more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tether.store.sqlfile import queries

if TYPE_CHECKING:
    import asyncpg


@dataclass
class Slot:
    """The held state of one source and channel; ``save`` records a new level."""

    level: int
    generation: int
    saved: int | None = field(default=None)

    def save(self, level: int) -> None:
        self.saved = level


class AlertState(Protocol):
    def hold(self, source: str, channel: str) -> AbstractAsyncContextManager[Slot | None]:
        """The slot of ``source`` and ``channel``, held until the block ends (its saved level
        is written then, unless the block raised), or None when another monitor holds it."""
        ...


class MemoryAlertState:
    def __init__(self) -> None:
        self._levels: dict[tuple[str, str], tuple[int, int]] = {}
        self._held: set[tuple[str, str]] = set()

    def level(self, source: str, channel: str) -> int:
        return self._levels.get((source, channel), (0, 0))[0]

    @asynccontextmanager
    async def hold(self, source: str, channel: str) -> AsyncIterator[Slot | None]:
        key = (source, channel)
        if key in self._held:
            yield None
            return
        self._held.add(key)
        try:
            level, generation = self._levels.get(key, (0, 0))
            slot = Slot(level, generation)
            yield slot
            if slot.saved is not None:
                self._levels[key] = (slot.saved, generation + 1)
        finally:
            self._held.discard(key)


class PostgresAlertState:
    """The state in ``tether_alert_state`` (migration 0009), over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._sql = queries("tether.ops", "postgres")

    def _args(self, name: str, **values: Any) -> tuple[Any, ...]:
        """The statement and its arguments, to splat into an asyncpg call."""
        return self._sql[name].bound(values)

    async def level(self, source: str, channel: str) -> int:
        sql = "SELECT level FROM tether_alert_state WHERE source = $1 AND channel = $2"
        value = await self._pool.fetchval(sql, source, channel)
        return int(value or 0)

    @asynccontextmanager
    async def hold(self, source: str, channel: str) -> AsyncIterator[Slot | None]:
        async with self._pool.acquire() as conn:
            await conn.execute(*self._args("ensure", source=source, channel=channel))
            async with conn.transaction():
                row = await conn.fetchrow(*self._args("hold", source=source, channel=channel))
                if row is None:
                    yield None
                    return
                slot = Slot(int(row["level"]), int(row["generation"]))
                yield slot
                if slot.saved is not None:
                    await conn.execute(
                        *self._args("save", source=source, channel=channel, level=slot.saved)
                    )
