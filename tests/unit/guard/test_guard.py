"""Guard: timeout, breaker, bulkhead and fallback around async calls (in-process store)."""

from __future__ import annotations

import asyncio

import pytest

from tether.guard import (
    BreakerPolicy,
    BulkheadFull,
    CircuitOpen,
    Guard,
    GuardRejected,
    GuardTimeout,
    MemoryBreakerStore,
)
from tether.ops import instruments

POLICY = BreakerPolicy(failure_threshold=2, window_s=60, open_s=10)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def broken(x: int = 0) -> str:
    raise ConnectionError("down")


async def slow(x: int = 0) -> str:
    await asyncio.sleep(5)
    return "late"


async def fine(x: int = 0) -> str:
    return f"real {x}"


async def rules(x: int = 0) -> str:
    return f"fallback {x}"


async def test_fallback_answers_failures_timeouts_and_an_open_circuit() -> None:
    calls: list[str] = []

    async def scorer(x: int) -> str:
        calls.append("scorer")
        raise ConnectionError("down")

    guard = Guard("s", timeout=0.05, breaker=POLICY, fallback=rules)
    assert await guard.call(scorer, 1) == "fallback 1"
    assert await guard.call(slow, 2) == "fallback 2"  # the timeout counts as a failure
    assert await guard.state() == "open"
    assert await guard.call(scorer, 3) == "fallback 3"
    assert calls == ["scorer"]  # open: the scorer was not called again


async def test_without_fallback_the_rejections_are_raised() -> None:
    clock = Clock()
    guard = Guard("s", timeout=0.05, breaker=POLICY, clock=clock)
    with pytest.raises(GuardTimeout, match=r"longer than 0\.05 s") as timed_out:
        await guard.call(slow)
    assert isinstance(timed_out.value, GuardRejected)
    with pytest.raises(ConnectionError):
        await guard.call(broken)
    clock.now += 4
    with pytest.raises(CircuitOpen) as opened:
        await guard.call(fine)
    assert opened.value.retry_after == pytest.approx(6)
    assert opened.value.guard == "s"


async def test_half_open_recovery() -> None:
    clock = Clock()
    guard = Guard("s", breaker=POLICY, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await guard.call(broken)
    clock.now += 10
    assert await guard.state() == "half_open"
    with pytest.raises(ConnectionError):
        await guard.call(broken)  # the probe fails: open again
    assert await guard.state() == "open"
    clock.now += 10
    assert await guard.call(fine, 7) == "real 7"  # the probe succeeds: closed
    assert await guard.state() == "closed"


async def test_one_probe_at_a_time_while_half_open() -> None:
    clock = Clock()
    guard = Guard("s", breaker=POLICY, clock=clock, fallback=rules)
    for _ in range(2):
        await guard.call(broken)
    clock.now += 10
    gate = asyncio.Event()

    async def probe(x: int) -> str:
        await gate.wait()
        return "probe"

    first = asyncio.create_task(guard.call(probe, 1))
    await asyncio.sleep(0)
    assert await guard.call(fine, 2) == "fallback 2"  # refused while the probe runs
    gate.set()
    assert await first == "probe"
    assert await guard.call(fine, 3) == "real 3"


async def test_bulkhead_refuses_calls_beyond_its_size_and_frees_slots() -> None:
    guard = Guard("b", breaker=None, bulkhead=2)
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "done"

    running = [asyncio.create_task(guard.call(held)) for _ in range(2)]
    await asyncio.sleep(0)
    assert guard.running == 2
    with pytest.raises(BulkheadFull, match="2 calls running"):
        await guard.call(held)
    gate.set()
    assert await asyncio.gather(*running) == ["done", "done"]
    assert guard.running == 0
    assert await guard.call(fine) == "real 0"


async def test_bulkhead_full_uses_the_fallback_and_never_counts_as_a_failure() -> None:
    guard = Guard("b", breaker=POLICY, bulkhead=1, fallback=rules)
    gate = asyncio.Event()

    async def held(x: int) -> str:
        await gate.wait()
        return "done"

    task = asyncio.create_task(guard.call(held, 1))
    await asyncio.sleep(0)
    assert [await guard.call(fine, n) for n in (2, 3, 4)] == [
        "fallback 2",
        "fallback 3",
        "fallback 4",
    ]
    assert await guard.state() == "closed"
    gate.set()
    assert await task == "done"


async def test_exceptions_that_are_not_failures_pass_through() -> None:
    guard = Guard(
        "v",
        breaker=BreakerPolicy(failure_threshold=1),
        fallback=rules,
        is_failure=lambda exc: not isinstance(exc, ValueError),
    )

    async def bad_input(x: int) -> str:
        raise ValueError("bad order")

    for _ in range(3):
        with pytest.raises(ValueError, match="bad order"):
            await guard.call(bad_input, 1)
    assert await guard.state() == "closed"


async def test_a_timeout_error_from_the_call_itself_is_a_failure_not_a_guard_timeout() -> None:
    async def own_timeout() -> str:
        raise TimeoutError("upstream said so")

    guard = Guard("t", timeout=5, breaker=BreakerPolicy(failure_threshold=1))
    with pytest.raises(TimeoutError, match="upstream said so"):
        await guard.call(own_timeout)
    assert await guard.state() == "open"


async def test_callers_running_the_call_themselves() -> None:
    clock = Clock()
    store = MemoryBreakerStore()
    guard = Guard("endpoint-1", breaker=POLICY, store=store, clock=clock)
    await guard.before()
    await guard.record_failure()
    await guard.record_failure()
    with pytest.raises(CircuitOpen):
        await guard.before()
    clock.now += 10
    await guard.before()  # the probe
    await guard.record_success()
    assert await guard.state() == "closed"
    # Another guard of the same name over the same store sees the same circuit.
    await guard.record_failure()
    await guard.record_failure()
    assert await Guard("endpoint-1", breaker=POLICY, store=store, clock=clock).state() == "open"


async def test_no_breaker_means_timeout_and_fallback_only() -> None:
    guard = Guard("n", timeout=0.05, breaker=None, fallback=rules)
    for _ in range(10):
        assert await guard.call(broken, 1) == "fallback 1"
    assert await guard.state() == "closed"
    assert await guard.call(fine, 2) == "real 2"


async def test_cancellation_is_not_a_failure_and_frees_the_bulkhead() -> None:
    guard = Guard("c", breaker=BreakerPolicy(failure_threshold=1), bulkhead=1)
    task = asyncio.create_task(guard.call(slow))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guard.running == 0
    assert await guard.state() == "closed"


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="failure_threshold must be at least 1"):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="window_s must be positive"):
        BreakerPolicy(window_s=0)
    with pytest.raises(ValueError, match="open_s must be positive"):
        BreakerPolicy(open_s=-1)
    with pytest.raises(ValueError, match="half_open_max_calls"):
        BreakerPolicy(half_open_max_calls=0)
    with pytest.raises(ValueError, match="timeout must be positive"):
        Guard("x", timeout=0)
    with pytest.raises(ValueError, match="bulkhead must be at least 1"):
        Guard("x", bulkhead=0)
    with pytest.raises(ValueError, match="non-empty name"):
        Guard("")


async def test_metrics_per_guard() -> None:
    assert instruments.ENABLED, "the metrics extra (prometheus-client) is part of the dev install"
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = sample("tether_guard_calls_total", guard="metered", outcome="failure")
    guard = Guard("metered", breaker=POLICY, fallback=rules)
    await guard.call(fine)
    await guard.call(broken)
    await guard.call(broken)
    await guard.call(fine)
    assert sample("tether_guard_calls_total", guard="metered", outcome="failure") == before + 2
    assert sample("tether_guard_calls_total", guard="metered", outcome="open") >= 1
    assert sample("tether_guard_fallbacks_total", guard="metered") >= 3
    assert sample("tether_guard_transitions_total", guard="metered", state="open") >= 1
    assert sample("tether_guard_call_seconds_count", guard="metered") >= 3
