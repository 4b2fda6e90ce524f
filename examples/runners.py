"""The runner registry: a loop of your own registers, beats its counters, and stops.

Run: ``.venv/bin/python examples/runners.py`` (no services: the registry is in memory; in a
deployment every process shares ``PostgresRunnerRegistry(pool)``, which ``tether relay``,
``tether worker``, ``tether webhooks run`` and ``tether realtime`` use on their own).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tether.ops.runners import Heartbeat, MemoryRunnerRegistry


async def main() -> None:
    registry = MemoryRunnerRegistry()
    since = datetime.now(UTC)
    # Counters end in _total (cumulative); anything else is a gauge.
    stats = {"synced_total": 0, "in_flight": 0}

    async with Heartbeat(registry, "consumer", "billing-sync", interval_s=0.1, stats=lambda: stats):
        for _ in range(5):
            stats["synced_total"] += 10
            stats["in_flight"] = 2
            await asyncio.sleep(0.1)
        [runner] = await registry.runners()
        print(f"{runner.name} ({runner.kind}): {runner.status(datetime.now(UTC))}")
        # Its status is read against the interval it promised (0.1 s here).
        for silent in (0.2, 0.5, 1.0):
            when = runner.heartbeat_at + timedelta(seconds=silent)
            print(f"silent for {silent} s: {runner.status(when)}")

    [runner] = await registry.runners()
    print(f"after the block: {runner.status(datetime.now(UTC))}")
    points = await registry.history(since, 60)
    synced = sum(p.rates["synced_total"] * 60 for p in points)
    print(f"synced per the history: {synced:.0f}")


asyncio.run(main())
