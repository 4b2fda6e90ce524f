"""``tether_runners{kind,status}``: the runner registry as a Prometheus gauge, so an alert can
fire when no relay is alive or one is lost, without scraping every runner. ``tether monitor
deadletters`` exports it at each check (a no-op without the metrics extra)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from tether.ops.instruments import gauge
from tether.ops.runners.model import RUNNER_KINDS, RunnerRegistry, RunnerStatus

RUNNERS = gauge(
    "tether_runners",
    "Runners in the runner registry by kind and status (alive, late, lost, stopped; "
    "stopped and lost ones for 24 hours), at the last export.",
    ["kind", "status"],
)
STATUSES: tuple[str, ...] = get_args(RunnerStatus)


async def export(
    registry: RunnerRegistry, now: datetime | None = None
) -> dict[tuple[str, str], int]:
    """Set the gauge from the registry; every known kind and status gets a series, zeros too,
    so an alert on ``tether_runners{kind="relay",status="alive"} == 0`` sees a value."""
    when = now or datetime.now(UTC)
    infos = await registry.runners()
    kinds = sorted(set(RUNNER_KINDS) | {i.kind for i in infos})
    counts = {(kind, status): 0 for kind in kinds for status in STATUSES}
    for info in infos:
        counts[info.kind, info.status(when)] += 1
    for (kind, status), count in counts.items():
        RUNNERS.labels(kind, status).set(count)
    return counts
