"""What a runner wraps its loop in: register on entry, beat every interval, stop on exit.

The registry is a window onto the runner, never a reason for it to stop: a relay must keep
publishing while the database that holds the registry is briefly unreachable. So a failed
registration at start does not refuse the start (the host runs, and the heartbeat keeps trying
to register every interval), and a failed beat is logged and tried again at the next interval.
Failures are logged at most once a minute, and the recovery once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any

from tether.core.waiting import wait_set
from tether.ops.runners.errors import UnknownRunner
from tether.ops.runners.model import (
    RunnerRegistry,
    checked_runner,
    checked_stats,
    default_name,
)

log = logging.getLogger("tether.ops.runners")

_LOG_EVERY_S = 60.0
# Registering prunes the registry; a runner that lives for days prunes again this often, so the
# history stays bounded even when nothing restarts.
PRUNE_EVERY_S = 3600.0
START_TIMEOUT_S = 2.0


def _no_stats() -> Mapping[str, float]:
    return {}


class Heartbeat:
    """``async with Heartbeat(registry, "relay", name, interval_s=10.0, stats=counters): ...``

    ``stats`` is called at each beat and returns the runner's counters (names ending in
    ``_total``) and gauges. ``name`` defaults to ``<host>:<pid>``. Each call to the registry is
    given at most one interval (at least a second), so a hung database delays no beat for long;
    entering waits at most 2 s for the registration, then the host runs and the beats retry it.
    """

    def __init__(
        self,
        registry: RunnerRegistry,
        kind: str,
        name: str | None = None,
        *,
        interval_s: float = 10.0,
        stats: Callable[[], Mapping[str, float]] = _no_stats,
    ) -> None:
        self.name = name or default_name()
        checked_runner(kind, self.name, interval_s)
        self.registry = registry
        self.kind = kind
        self.interval_s = float(interval_s)
        self._stats = stats
        self._last_stats: Mapping[str, float] = {}
        self._bad_keys: set[object] = set()
        self.runner_id: uuid.UUID | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._pruned_at = time.monotonic()
        self._pruning: asyncio.Task[None] | None = None
        self._failing_since: float | None = None
        self._logged_at = 0.0

    @property
    def timeout_s(self) -> float:
        return max(self.interval_s, 1.0)

    def _read_stats(self) -> Mapping[str, float]:
        try:
            read = dict(self._stats())
        except Exception:
            # A broken stats callable must not stop the beats: the runner is still alive.
            log.exception(
                "runner %s: reading its stats failed; beating with the last ones", self.name
            )
            return self._last_stats
        self._last_stats = self._valid(read)
        return self._last_stats

    def _valid(self, stats: dict[str, Any]) -> dict[str, float]:
        """The stats the registry accepts; a bad one (NaN, not a number) is left out and named
        once, rather than failing every beat and showing a live runner as lost."""
        kept: dict[str, float] = {}
        for key, value in stats.items():
            try:
                kept.update(checked_stats({key: value}))
            except ValueError as error:
                if key not in self._bad_keys:
                    self._bad_keys.add(key)
                    log.warning("runner %s: stat left out of its beats: %s", self.name, error)
        return kept

    def _failed(self, action: str, error: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "runner %s (%s): %s failed, retrying every %g s: %s",
                self.name,
                self.kind,
                action,
                self.interval_s,
                error or type(error).__name__,
            )

    def _succeeded(self) -> None:
        if self._failing_since is not None:
            log.info(
                "runner %s (%s): the registry answers again after %.0f s",
                self.name,
                self.kind,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
            self._logged_at = 0.0

    async def _register(self, timeout_s: float) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the call completes, and the beat task would never end.
        async with asyncio.timeout(timeout_s):
            self.runner_id = await self.registry.register(
                self.kind, self.name, self.interval_s, self._read_stats()
            )

    async def pulse(self, timeout_s: float | None = None) -> None:
        """One beat now (registering first if not yet registered); failures are logged."""
        action = "registering" if self.runner_id is None else "beating"
        limit = timeout_s or self.timeout_s
        try:
            if self.runner_id is None:
                await self._register(limit)
            else:
                try:
                    async with asyncio.timeout(limit):
                        await self.registry.beat(self.runner_id, self._read_stats())
                except UnknownRunner:
                    # Pruned after the registry went long without hearing from it: start over.
                    self.runner_id = None
                    await self._register(limit)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed(action, error)
        else:
            self._succeeded()
            self._maybe_prune()

    def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S or self._pruning is not None:
            return
        self._pruned_at = time.monotonic()
        # Its own task: deleting a day of history must not delay the next beat.
        self._pruning = asyncio.create_task(self._prune(), name="tether-heartbeat-prune")

    async def _prune(self) -> None:
        try:
            removed = await self.registry.prune()
            log.debug("runner %s: pruned %d rows of the runner registry", self.name, removed)
        except Exception as error:
            log.warning("runner %s: pruning the runner registry failed: %s", self.name, error)
        finally:
            self._pruning = None

    async def _run(self) -> None:
        while not await wait_set(self._closing, self.interval_s):
            await self.pulse()

    async def __aenter__(self) -> Heartbeat:
        self._closing.clear()
        # The host waits this long at most for its registration; after that it runs, and the
        # beat task keeps trying.
        await self.pulse(min(self.timeout_s, START_TIMEOUT_S))
        self._task = asyncio.create_task(self._run(), name=f"tether-heartbeat-{self.kind}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        if self.runner_id is None:
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.registry.stop(self.runner_id, self._read_stats())
        except Exception as error:
            # The runner stops either way; the registry will show it lost instead of stopped.
            log.warning(
                "runner %s (%s): marking it stopped failed: %s", self.name, self.kind, error
            )


@contextlib.asynccontextmanager
async def maybe_heartbeat(
    registry: RunnerRegistry | None,
    kind: str,
    name: str | None = None,
    *,
    interval_s: float = 10.0,
    stats: Callable[[], Mapping[str, float]] = _no_stats,
) -> AsyncIterator[Heartbeat | None]:
    """A :class:`Heartbeat` around the block when there is a registry, else nothing: how the
    library's runners (Relay, Worker, Dispatcher, Gateway, ConsumerRunner) take theirs."""
    if registry is None:
        yield None
        return
    async with Heartbeat(registry, kind, name, interval_s=interval_s, stats=stats) as beat:
        yield beat
