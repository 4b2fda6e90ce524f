"""Cross-process cache invalidation: LISTEN for grant changes, poll a version as the fallback.

Every committed grant change calls ``pg_notify('tether_authz', user)`` and bumps
``tether_authz_version``. While the LISTEN connection is up each notification drops one
user's entry within milliseconds. When it is down (or on stores without NOTIFY), a cheap
``SELECT value FROM tether_authz_version`` every ``interval`` clears the whole cache when the
value moved. (Re)connecting clears the cache too: notifications sent while disconnected are
lost, and the clear happens after LISTEN starts, so no change falls between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tether.authz.cache import GrantCache
from tether.authz.port import AuthzStore
from tether.authz.sql import CHANNEL, asyncpg_dsn
from tether.store import dialect
from tether.store.postgres.pooler import listen_dsn

_log = logging.getLogger("tether.authz.watch")


class InvalidationWatcher:
    def __init__(
        self,
        store: AuthzStore,
        cache: GrantCache,
        *,
        listen_dsn: str | None = None,
        interval: float = 0.25,
    ) -> None:
        self.store = store
        self.cache = cache
        self.listen_dsn = listen_dsn
        self.interval = interval
        self._seen: int | None = None
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self.notifications = 0
        self.polls_that_cleared = 0

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def run_once(self) -> None:
        """Connect the listener if needed, then compare the version (clear on change if deaf)."""
        if self.listen_dsn is not None and not self.listening:
            await self._listen()
        version = await self.store.version()
        if self._seen is not None and version != self._seen and not self.listening:
            self.cache.clear()
            self.polls_that_cleared += 1
        self._seen = version

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the loop must outlive a database restart
                _log.warning("authz invalidation check failed; clearing the cache", exc_info=True)
                self.cache.clear()
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        await self.run_once()
        self._task = asyncio.create_task(self.run(), name="tether-authz-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _listen(self) -> None:
        import asyncpg

        try:
            conn = await asyncpg.connect(self.listen_dsn, timeout=2)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            _log.warning("authz LISTEN connection failed; polling the version instead")
            return
        await conn.add_listener(CHANNEL, self._on_notify)
        self._conn = conn
        self.cache.clear()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        self.notifications += 1
        if payload == "*":
            self.cache.clear()
        else:
            self.cache.invalidate(str(payload))


def listen_dsn_of(store: Any) -> str | None:
    """The asyncpg DSN behind an SQL store on PostgreSQL, else None (poll only).

    None too when the store reaches PostgreSQL through a transaction-mode pooler, where LISTEN
    has no session to live in; pass ``listen_dsn=`` a direct DSN to listen there anyway."""
    engine = getattr(store, "engine", None)
    if engine is None or dialect.of_engine(engine) != "postgres":
        return None
    return listen_dsn(getattr(store, "pooler_mode", None), asyncpg_dsn(engine))
