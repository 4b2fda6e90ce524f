"""``Guard``: timeout + circuit breaker + optional bulkhead + fallback around an async call.

Why not a library: purgatory (the maintained asyncio breaker with Redis) keeps its Redis state
with separate GET/SET round trips (two instances can lose each other's updates), counts
failures without a window, has no half-open probe limit, and raises when Redis is down;
pybreaker's Redis storage is synchronous; aiobreaker and aiocircuitbreaker are unmaintained
and in-process only. None has the timeout, bulkhead and fallback. The breaker here is the
pure rules in ``policy`` plus a Lua script, about 150 lines together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from tether.guard.errors import BulkheadFull, CircuitOpen, GuardRejected, GuardTimeout
from tether.guard.metrics import GUARD_CALL_SECONDS, GUARD_CALLS, GUARD_FALLBACKS, GUARD_TRANSITIONS
from tether.guard.policy import BreakerPolicy, State
from tether.guard.store import BreakerStore, MemoryBreakerStore

T = TypeVar("T")

_DEFAULT_POLICY = BreakerPolicy()


def _every_exception(_: BaseException) -> bool:
    return True


class Guard(Generic[T]):
    """Runs calls to one dependency under a timeout, a circuit breaker, a bulkhead and a
    fallback, each optional.

    ``is_failure`` decides which exceptions count against the circuit (and get the fallback);
    others pass straight through. Guards with the same ``name`` and ``store`` share a circuit.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: float | None = None,
        breaker: BreakerPolicy | None = _DEFAULT_POLICY,
        bulkhead: int | None = None,
        fallback: Callable[..., Awaitable[T]] | None = None,
        store: BreakerStore | None = None,
        is_failure: Callable[[BaseException], bool] = _every_exception,
        clock: Callable[[], float] = time.time,
        metrics_name: str | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a guard needs a non-empty name")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"guard {name!r}: timeout must be positive, got {timeout}")
        if bulkhead is not None and (isinstance(bulkhead, bool) or bulkhead < 1):
            raise ValueError(f"guard {name!r}: bulkhead must be at least 1, got {bulkhead}")
        self.name = name
        self.timeout = timeout
        self.breaker = breaker
        self.bulkhead = bulkhead
        self.fallback = fallback
        self._store: BreakerStore = store if store is not None else MemoryBreakerStore()
        self._is_failure = is_failure
        self._clock = clock
        label = metrics_name or name
        # Labelled children made once: .labels() per call costs more than the rest of the guard.
        self._counted = {
            outcome: GUARD_CALLS.labels(label, outcome)
            for outcome in ("success", "failure", "timeout", "open", "bulkhead")
        }
        self._fallbacks = GUARD_FALLBACKS.labels(label)
        self._seconds = GUARD_CALL_SECONDS.labels(label)
        self._label = label
        self._running = 0
        self._last_state: State = "closed"

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)`` under the guard; the fallback (same arguments) answers
        when the circuit is open, the bulkhead full, or the call fails or times out."""
        try:
            self._enter_bulkhead()
            try:
                admitted = await self._admit()
            except CircuitOpen:
                self._running -= 1
                raise
        except GuardRejected as refused:
            return await self._fall_back(refused, args, kwargs)
        cause: BaseException
        try:
            return await self._run(fn, args, kwargs, report_success=admitted != "closed")
        except GuardTimeout as timed_out:
            cause = timed_out
        except Exception as exc:
            if not self._is_failure(exc):
                raise
            cause = exc
        finally:
            self._running -= 1
        # The fallback runs outside the bulkhead: it must not keep the slot of a failed call.
        return await self._fall_back(cause, args, kwargs)

    async def before(self) -> None:
        """Raise ``CircuitOpen`` unless the circuit lets a call through now (takes the one
        half-open probe slot when it does). For callers that run the call themselves."""
        await self._admit()

    async def _admit(self) -> State:
        if self.breaker is None:
            return "closed"
        admission = await self._store.admit(self.name, self.breaker, self._clock())
        self._saw(admission.state)
        if not admission.allowed:
            self._counted["open"].inc()
            raise CircuitOpen(self.name, admission.retry_after)
        return admission.state

    async def record_success(self) -> None:
        if self.breaker is not None:
            self._saw(await self._store.success(self.name, self.breaker, self._clock()))

    async def record_failure(self) -> None:
        if self.breaker is not None:
            self._saw(await self._store.failure(self.name, self.breaker, self._clock()))

    async def state(self) -> State:
        if self.breaker is None:
            return "closed"
        return await self._store.state(self.name, self.breaker, self._clock())

    @property
    def running(self) -> int:
        """Calls running under this guard now (what the bulkhead counts)."""
        return self._running

    def _enter_bulkhead(self) -> None:
        if self.bulkhead is not None and self._running >= self.bulkhead:
            self._counted["bulkhead"].inc()
            raise BulkheadFull(self.name, self.bulkhead)
        self._running += 1

    async def _run(
        self, fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any, *, report_success: bool
    ) -> T:
        started = time.perf_counter()
        try:
            if self.timeout is None:
                result = await fn(*args, **kwargs)
            else:
                async with asyncio.timeout(self.timeout) as deadline:
                    result = await fn(*args, **kwargs)
        except TimeoutError:
            self._seconds.observe(time.perf_counter() - started)
            if self.timeout is None or not deadline.expired():
                await self._failed("failure")
                raise
            await self._failed("timeout")
            raise GuardTimeout(self.name, self.timeout) from None
        except Exception as exc:
            self._seconds.observe(time.perf_counter() - started)
            if self._is_failure(exc):
                await self._failed("failure")
            raise
        self._seconds.observe(time.perf_counter() - started)
        self._counted["success"].inc()
        if report_success:  # a success changes nothing in a closed circuit: no store step
            await self.record_success()
        return result

    async def _failed(self, outcome: str) -> None:
        self._counted[outcome].inc()
        await self.record_failure()

    async def _fall_back(self, cause: BaseException, args: Any, kwargs: Any) -> T:
        if self.fallback is None:
            raise cause
        self._fallbacks.inc()
        return await self.fallback(*args, **kwargs)

    def _saw(self, state: State) -> None:
        if state != self._last_state:
            GUARD_TRANSITIONS.labels(self._label, state).inc()
            self._last_state = state
