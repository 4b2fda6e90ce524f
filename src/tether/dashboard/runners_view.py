"""What the overview and the realtime page show of each runner in the registry
(``tether.ops.runners``): its status, how long since its last heartbeat, and its key figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.ops.runners import RunnerInfo

# The figures worth a column for each kind, in the order shown; other stats a runner reports
# are left to the registry (and Prometheus).
KEY_STATS: dict[str, tuple[str, ...]] = {
    "relay": ("published_total", "failed_total", "dead_total", "lag_s"),
    "job-worker": ("done_total", "failed_total", "dead_total", "rescued_total", "in_flight"),
    "webhook-dispatcher": ("delivered_total", "failed_total", "dead_total", "in_flight"),
    "realtime-gateway": ("connections", "channels", "messages_total", "disconnects_total"),
    "consumer": ("handled_total", "retried_total", "dead_total"),
}
# Lost runners first: they are what an operator looks for; stopped ones last.
_ORDER = {"lost": 0, "late": 1, "alive": 2, "stopped": 3}


@dataclass(frozen=True, slots=True)
class Stat:
    key: str
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class RunnerRow:
    info: RunnerInfo
    status: str  # alive, late, stopped, lost
    beat_age: timedelta
    stats: tuple[Stat, ...]

    @property
    def where(self) -> str:
        return f"{self.info.host}/{self.info.pid}"

    def stat(self, key: str) -> float | None:
        return self.info.stats.get(key)


def label_of(key: str) -> str:
    """``published_total`` → ``published``, ``lag_s`` → ``lag``, ``in_flight`` → ``in flight``."""
    for suffix in ("_total", "_s"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
            break
    return key.replace("_", " ")


def stat_text(key: str, value: float) -> str:
    if key.endswith("_s"):
        return f"{value:.1f} s"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def key_stats(info: RunnerInfo) -> tuple[Stat, ...]:
    keys = KEY_STATS.get(info.kind, tuple(sorted(info.stats)))
    return tuple(Stat(k, label_of(k), stat_text(k, info.stats[k])) for k in keys if k in info.stats)


def runner_rows(infos: list[RunnerInfo], now: datetime, kind: str | None = None) -> list[RunnerRow]:
    """The runners (of ``kind`` when given), lost and late ones first, then by kind and name."""
    rows = [
        RunnerRow(i, i.status(now), max(now - i.heartbeat_at, timedelta(0)), key_stats(i))
        for i in infos
        if kind is None or i.kind == kind
    ]
    rows.sort(key=lambda r: (_ORDER.get(r.status, 9), r.info.kind, r.info.name, r.where))
    return rows


def rate_now(beats: list[tuple[datetime, dict[str, float]]], key: str) -> float | None:
    """A counter's rate between a runner's last two heartbeats (newest first); a counter that
    went down was reset by a restart, so its new value is the increase."""
    if len(beats) < 2:
        return None
    (t1, new), (t0, old) = beats[0], beats[1]
    seconds = (t1 - t0).total_seconds()
    if seconds <= 0 or key not in new:
        return None
    before = old.get(key, 0.0)
    grown = new[key] - before if new[key] >= before else new[key]
    return grown / seconds
