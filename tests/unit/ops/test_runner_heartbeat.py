"""Heartbeat: the runner's window onto the registry never fails the runner. A registry that
is down at start delays the registration, a failed beat is retried at the next interval and
logged at most once a minute, a runner the registry forgot registers again, and a clean exit
marks it stopped. Also the gateway, which registers on start and stops on stop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest

from tether.ops.runners import Heartbeat, MemoryRunnerRegistry, heartbeat, maybe_heartbeat
from tether.realtime import Gateway, JwtVerifier

BEAT = 0.02


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait for ``check`` (bounded: a loaded machine may be slow to run the beats)."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not {what} within 5 s")


class Flaky(MemoryRunnerRegistry):
    """A memory registry that fails while ``down`` is set, as a database outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError("registry down")

    async def register(
        self, kind: str, name: str, interval_s: float, stats: Mapping[str, float]
    ) -> uuid.UUID:
        self._check()
        return await super().register(kind, name, interval_s, stats)

    async def beat(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        self._check()
        await super().beat(runner_id, stats)

    async def stop(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        self._check()
        await super().stop(runner_id, stats)


async def test_registers_beats_with_fresh_stats_and_stops() -> None:
    registry = MemoryRunnerRegistry()
    counter = {"done_total": 0.0}
    async with Heartbeat(registry, "job-worker", "w", interval_s=BEAT, stats=lambda: counter):
        [info] = await registry.runners()
        assert info.status(info.heartbeat_at) == "alive"
        counter["done_total"] = 3
        await asyncio.sleep(BEAT * 3)
        [info] = await registry.runners()
        assert info.heartbeat_at > info.started_at
        assert info.stats == {"done_total": 3.0}
    [info] = await registry.runners()
    assert info.stopped_at is not None


async def test_a_registry_down_at_start_does_not_stop_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Flaky()
    registry.down = True
    with caplog.at_level(logging.WARNING, "tether.ops.runners"):
        async with Heartbeat(registry, "relay", "r", interval_s=BEAT) as beat:
            assert beat.runner_id is None
            await until(lambda: registry.calls >= 3, "retried")
            # Logged once, not at every attempt.
            assert len([r for r in caplog.records if "registering failed" in r.message]) == 1
            registry.down = False
            await until(lambda: beat.runner_id is not None, "registered")
            [info] = await registry.runners()
            assert info.name == "r"


async def test_failed_beats_are_retried_and_a_forgotten_runner_registers_again() -> None:
    registry = Flaky()
    async with Heartbeat(registry, "relay", "r", interval_s=BEAT) as beat:
        first = beat.runner_id
        registry.down = True
        await asyncio.sleep(BEAT * 4)
        registry.down = False
        await asyncio.sleep(BEAT * 4)
        assert beat.runner_id == first
        # The registry pruned it (silent for days): the next beat registers anew.
        registry._entries.clear()
        await until(lambda: beat.runner_id not in (None, first), "registered again")


async def test_a_failing_stop_and_a_failing_stats_callable_are_only_logged() -> None:
    registry = Flaky()

    def broken() -> Mapping[str, float]:
        raise RuntimeError("stats broke")

    async with Heartbeat(registry, "consumer", "c", interval_s=BEAT, stats=broken):
        await asyncio.sleep(BEAT * 3)
        registry.down = True
    registry.down = False
    [info] = await registry.runners()
    assert info.stopped_at is None  # shown late, then lost, instead of stopped


async def test_no_registry_no_heartbeat() -> None:
    async with maybe_heartbeat(None, "relay") as beat:
        assert beat is None


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        Heartbeat(MemoryRunnerRegistry(), "relay", interval_s=0)


async def test_the_gateway_registers_on_start_and_stops_on_stop() -> None:
    registry = MemoryRunnerRegistry()
    gateway = Gateway(JwtVerifier("x" * 32), registry=registry, name="gw", registry_interval_s=BEAT)
    async with gateway:
        await asyncio.sleep(BEAT * 3)
        [info] = await registry.runners()
        assert (info.kind, info.name) == ("realtime-gateway", "gw")
        assert info.stats == {
            "connections": 0,
            "channels": 0,
            "messages_total": 0,
            "disconnects_total": 0,
        }
    [info] = await registry.runners()
    assert info.stopped_at is not None


async def test_a_long_lived_runner_prunes_the_registry_now_and_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heartbeat, "PRUNE_EVERY_S", 0.0)
    pruned: list[int] = []

    class Counting(MemoryRunnerRegistry):
        async def prune(self, older_than: timedelta = timedelta(hours=24)) -> int:
            removed = await super().prune(older_than)
            pruned.append(removed)
            return removed

    registry = Counting()
    async with Heartbeat(registry, "relay", "r", interval_s=BEAT):
        # One prune at registration, then more from the beats.
        await until(lambda: len(pruned) >= 3, "pruned")


async def test_a_bad_stat_is_left_out_instead_of_failing_the_beats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = MemoryRunnerRegistry()
    stats = {"done_total": 1.0, "lag_s": float("nan")}
    with caplog.at_level(logging.WARNING, "tether.ops.runners"):
        async with Heartbeat(registry, "job-worker", "w", interval_s=BEAT, stats=lambda: stats):
            stats["done_total"] = 2.0
            await until(
                lambda: registry._entries and _only(registry).stats["done_total"] == 2.0, "beat"
            )
    assert _only(registry).stats == {"done_total": 2.0}
    assert len([r for r in caplog.records if "left out" in r.message]) == 1


def _only(registry: MemoryRunnerRegistry) -> Any:
    [entry] = registry._entries.values()
    return entry.info


async def test_a_hung_registry_delays_the_start_two_seconds_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heartbeat, "START_TIMEOUT_S", 0.1)

    class Hung(MemoryRunnerRegistry):
        async def register(
            self, kind: str, name: str, interval_s: float, stats: Mapping[str, float]
        ) -> uuid.UUID:
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    started = asyncio.get_running_loop().time()
    async with Heartbeat(Hung(), "relay", "r", interval_s=5.0) as beat:
        assert beat.runner_id is None
        assert asyncio.get_running_loop().time() - started < 1.0
