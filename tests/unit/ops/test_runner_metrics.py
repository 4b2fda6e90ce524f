"""tether_runners{kind,status} counts the registry's runners by status, zeros included."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from tether.core.clock import FrozenClock
from tether.ops.runners import MemoryRunnerRegistry
from tether.ops.runners.metrics import export


def sample(kind: str, status: str) -> float | None:
    return REGISTRY.get_sample_value("tether_runners", {"kind": kind, "status": status})


async def test_export_counts_runners_by_kind_and_status() -> None:
    clock = FrozenClock()
    registry = MemoryRunnerRegistry(clock=clock)
    lost = await registry.register("relay", "old", 10.0, {})
    clock.advance(timedelta(minutes=5))
    await registry.register("relay", "a", 10.0, {})
    stopped = await registry.register("job-worker", "w", 10.0, {})
    await registry.stop(stopped, {})
    await registry.register("my-importer", "i", 10.0, {})  # a kind of the application's own
    counts = await export(registry, clock.now())
    assert lost and counts["relay", "lost"] == 1
    assert sample("relay", "alive") == 1
    assert sample("relay", "lost") == 1
    assert sample("job-worker", "stopped") == 1
    assert sample("webhook-dispatcher", "alive") == 0
    assert sample("my-importer", "alive") == 1
