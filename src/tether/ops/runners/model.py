"""What the runner registry stores and answers: a runner, its status, its throughput over time,
and the port every adapter implements."""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, get_args

RunnerKind = Literal["relay", "job-worker", "webhook-dispatcher", "realtime-gateway", "consumer"]
RUNNER_KINDS: tuple[str, ...] = get_args(RunnerKind)

RunnerStatus = Literal["alive", "late", "stopped", "lost"]

# A runner is alive while its last beat is within 2.5 intervals (one missed beat plus slack for a
# slow database round trip), late up to 6 intervals (several missed beats: hung, or the database
# unreachable from it), and lost after that (killed, or its host gone).
ALIVE_INTERVALS = 2.5
LATE_INTERVALS = 6.0

# History points older than this are pruned, and runners gone (stopped or lost) for longer than
# KEEP_RUNNERS are deleted with their points, whenever a runner registers.
KEEP_HISTORY = timedelta(hours=24)
KEEP_RUNNERS = timedelta(days=7)

_MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    id: uuid.UUID
    kind: str
    name: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    interval_s: float
    stopped_at: datetime | None
    # Keys ending in _total are cumulative counters (the Prometheus convention); the others are
    # gauges (connections, in_flight, lag_s).
    stats: dict[str, float]

    def status(self, now: datetime) -> RunnerStatus:
        if self.stopped_at is not None:
            return "stopped"
        silent = (now - self.heartbeat_at).total_seconds()
        if silent <= ALIVE_INTERVALS * self.interval_s:
            return "alive"
        if silent <= LATE_INTERVALS * self.interval_s:
            return "late"
        return "lost"


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One kind's throughput in one time bucket.

    ``rates``: per second, each ``*_total`` counter's increase summed over the kind's runners
    (the positive differences between a runner's consecutive beats, over the bucket's length; a
    counter that went down was reset by a restart, so its new value is the increase).
    ``gauges``: the highest value of each gauge reported in the bucket.
    """

    at: datetime
    kind: str
    rates: dict[str, float]
    gauges: dict[str, float]


class RunnerRegistry(Protocol):
    async def register(
        self, kind: str, name: str, interval_s: float, stats: Mapping[str, float]
    ) -> uuid.UUID:
        """Record a starting runner of this process (host and pid) and return its id."""
        ...

    async def beat(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        """Update the runner's heartbeat and stats, and append a history point."""
        ...

    async def stop(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        """Mark the runner stopped (a clean exit), with its final stats."""
        ...

    async def runners(self, *, gone_for: timedelta = timedelta(hours=24)) -> list[RunnerInfo]:
        """Every runner not stopped or lost, and those stopped or lost within ``gone_for``;
        ordered by kind, newest first within a kind."""
        ...

    async def history(self, since: datetime, bucket_s: int) -> list[HistoryPoint]:
        """Throughput per kind in ``bucket_s``-second buckets from ``since``, oldest first."""
        ...

    async def prune(self, older_than: timedelta = KEEP_HISTORY) -> int:
        """Delete history points older than ``older_than`` and runners gone for longer than
        seven days; return how many points and runners went."""
        ...


def is_counter(key: str) -> bool:
    return key.endswith("_total")


def this_host() -> str:
    return socket.gethostname()


def default_name() -> str:
    """``<host>:<pid>``, the name of a runner whose operator gave none."""
    return f"{this_host()}:{os.getpid()}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def bucket_start(at: datetime, bucket_s: int) -> datetime:
    """The start of the ``bucket_s``-second bucket holding ``at``, counted from the Unix epoch
    in whole microseconds (a float epoch rounds 23:59:59.999999 into the next bucket)."""
    micros = (at - _EPOCH) // _MICROSECOND
    return _EPOCH + timedelta(microseconds=micros - micros % (bucket_s * 1_000_000))


def checked_runner(kind: str, name: str, interval_s: float) -> None:
    """Refuse a registration the listing could not show sensibly, naming the field."""
    for field, value in (("kind", kind), ("name", name)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"runner {field} must be a non-empty string, got {value!r}")
        if len(value) > _MAX_TEXT:
            raise ValueError(
                f"runner {field} is longer than {_MAX_TEXT} characters: {value[:40]!r}..."
            )
    if not isinstance(interval_s, int | float) or not math.isfinite(interval_s) or interval_s <= 0:
        raise ValueError(
            f"runner interval_s must be a positive number of seconds, got {interval_s!r}"
        )


def checked_stats(stats: Mapping[str, float]) -> dict[str, float]:
    """The stats as a plain dict of floats; a non-string key or a non-finite value is refused
    (JSON has no NaN, and a NaN counter would poison every rate computed from it)."""
    out: dict[str, float] = {}
    for key, value in stats.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"runner stats keys must be non-empty strings, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"runner stat {key!r} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"runner stat {key!r} must be finite, got {value!r}")
        out[key] = number
    return out


def checked_bucket(bucket_s: int) -> int:
    if isinstance(bucket_s, bool) or not isinstance(bucket_s, int) or bucket_s < 1:
        raise ValueError(
            f"history bucket_s must be a whole number of seconds >= 1, got {bucket_s!r}"
        )
    return bucket_s
