"""The runner registry in this process's memory: for tests, SQLite deployments and embedding,
where every runner lives in one process (another process's runners are not seen)."""

from __future__ import annotations

import bisect
import dataclasses
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.ops.runners import history as history_of
from tether.ops.runners.errors import UnknownRunner
from tether.ops.runners.model import (
    KEEP_HISTORY,
    KEEP_RUNNERS,
    HistoryPoint,
    RunnerInfo,
    bucket_start,
    checked_bucket,
    checked_runner,
    checked_stats,
    this_host,
)


@dataclass
class _Entry:
    info: RunnerInfo
    beats: list[history_of.Beat] = field(default_factory=list)

    def add(self, at: datetime, stats: dict[str, float]) -> None:
        if self.beats and self.beats[-1][0] == at:
            self.beats[-1] = (at, stats)
        else:
            self.beats.append((at, stats))


class MemoryRunnerRegistry:
    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._entries: dict[uuid.UUID, _Entry] = {}

    async def register(
        self, kind: str, name: str, interval_s: float, stats: Mapping[str, float]
    ) -> uuid.UUID:
        checked_runner(kind, name, interval_s)
        values = checked_stats(stats)
        await self.prune()
        now = self._clock.now()
        runner_id = uuid.uuid4()
        info = RunnerInfo(
            id=runner_id,
            kind=kind,
            name=name,
            host=this_host(),
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
            interval_s=float(interval_s),
            stopped_at=None,
            stats=values,
        )
        self._entries[runner_id] = _Entry(info)
        self._entries[runner_id].add(now, values)
        return runner_id

    def _entry(self, runner_id: uuid.UUID) -> _Entry:
        try:
            return self._entries[runner_id]
        except KeyError:
            raise UnknownRunner(runner_id) from None

    def _update(self, runner_id: uuid.UUID, stats: Mapping[str, float], *, stop: bool) -> None:
        values = checked_stats(stats)
        entry = self._entry(runner_id)
        now = self._clock.now()
        stopped_at = now if stop else entry.info.stopped_at
        entry.info = dataclasses.replace(
            entry.info, heartbeat_at=now, stopped_at=stopped_at, stats=values
        )
        entry.add(now, values)

    async def beat(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        self._update(runner_id, stats, stop=False)

    async def stop(self, runner_id: uuid.UUID, stats: Mapping[str, float]) -> None:
        self._update(runner_id, stats, stop=True)

    async def runners(self, *, gone_for: timedelta = timedelta(hours=24)) -> list[RunnerInfo]:
        now = self._clock.now()
        shown = [
            e.info
            for e in self._entries.values()
            if e.info.status(now) in ("alive", "late")
            or (e.info.stopped_at or e.info.heartbeat_at) >= now - gone_for
        ]
        shown.sort(key=lambda i: i.started_at, reverse=True)
        shown.sort(key=lambda i: i.kind)
        return shown

    async def history(self, since: datetime, bucket_s: int) -> list[HistoryPoint]:
        bucket = checked_bucket(bucket_s)
        since = bucket_start(since, bucket)  # whole buckets, the first one included
        series = []
        for entry in self._entries.values():
            # From the last beat before ``since``: it is the base of the first increase inside.
            first = max(bisect.bisect_left([at for at, _ in entry.beats], since) - 1, 0)
            series.append((entry.info.kind, entry.beats[first:]))
        return history_of.history(series, since, bucket)

    async def prune(self, older_than: timedelta = KEEP_HISTORY) -> int:
        now = self._clock.now()
        removed = 0
        for runner_id, entry in list(self._entries.items()):
            if (entry.info.stopped_at or entry.info.heartbeat_at) < now - KEEP_RUNNERS:
                removed += 1 + len(entry.beats)
                del self._entries[runner_id]
                continue
            kept = [b for b in entry.beats if b[0] >= now - older_than]
            removed += len(entry.beats) - len(kept)
            entry.beats = kept
        return removed
