"""The dead-letter monitor: watch dead counts, alert once per level, export them as gauges.

Any object with a ``name`` and ``async dead_count()`` is a :class:`DeadLetterSource`: the
outbox's ships here, deliveries and jobs bring theirs. Each check reads every source, sets the
``tether_dead_letters{source}`` gauge (and ``tether_oldest_pending_age_seconds`` for sources
that know it), and for each source and channel sends the alert :class:`~tether.ops.alerts.Rule`
says is due, holding that pair's state (:mod:`tether.ops.alerts_state`) while it sends::

    monitor = DeadLetterMonitor([OutboxDeadLetters(engine)], [slack], state)
    report = await monitor.check_once()      # one round (tether monitor deadletters --once)
    await monitor.run(interval=60, stop=stop) # rounds until ``stop`` is set
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from tether.core.errors import ConfigError
from tether.ops.alerts import Alert, AlertChannel, AlertDeliveryError, Rule
from tether.ops.alerts_state import AlertState
from tether.ops.instruments import counter, gauge
from tether.queue.ports import QueueStats

log = logging.getLogger("tether.monitor")

DEAD_LETTERS = gauge(
    "tether_dead_letters", "Dead items per source, at the monitor's last check.", ["source"]
)
OLDEST_PENDING = gauge(
    "tether_oldest_pending_age_seconds",
    "Age of the oldest pending item per source, at the monitor's last check (0: none).",
    ["source"],
)
LAST_CHECK = gauge(
    "tether_deadletter_monitor_last_check_timestamp_seconds",
    "Unix time of the dead-letter monitor's last completed check.",
)
ALERTS = counter(
    "tether_deadletter_alerts_total",
    "Dead-letter alerts by source, kind and outcome (sent, failed).",
    ["source", "kind", "outcome"],
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


@runtime_checkable
class DeadLetterSource(Protocol):
    name: str

    async def dead_count(self) -> int: ...


@runtime_checkable
class PendingAgeSource(Protocol):
    """Optional: a source that also knows how old its oldest pending item is."""

    async def oldest_pending_age(self) -> timedelta | None: ...


class _Stats(Protocol):
    async def stats(self) -> QueueStats: ...


class OutboxDeadLetters:
    """Dead outbox events, through the work-item engine over the outbox table
    (``PostgresQueue(pool, spec=OUTBOX, queue=None)`` or the SQLite one). One stats query
    per check gives both the dead count and the oldest pending age."""

    def __init__(self, engine: _Stats, name: str = "outbox") -> None:
        self.name = name
        self._engine = engine
        self._age: timedelta | None = None

    async def dead_count(self) -> int:
        stats = await self._engine.stats()
        self._age = stats.oldest_pending_age
        return stats.dead

    async def oldest_pending_age(self) -> timedelta | None:
        """As of the last :meth:`dead_count` (the monitor calls that first)."""
        return self._age


@dataclass
class CheckReport:
    counts: dict[str, int] = field(default_factory=dict)
    sent: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: int = 0  # source and channel pairs another monitor held


class DeadLetterMonitor:
    def __init__(
        self,
        sources: Sequence[DeadLetterSource],
        channels: Sequence[AlertChannel],
        state: AlertState,
        *,
        rule: Rule | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        _check_names("source", [s.name for s in sources])
        _check_names("alert channel", [c.name for c in channels])
        self.sources = list(sources)
        self.channels = list(channels)
        self.rule = rule or Rule()
        self._state = state
        self._clock = clock
        self.checked = asyncio.Event()  # set after every check, for tests and embedders

    async def check_once(self) -> CheckReport:
        report = CheckReport()
        for source in self.sources:
            try:
                count = await source.dead_count()
            except Exception as exc:  # one broken source must not silence the others
                report.errors.append(f"source {source.name}: {type(exc).__name__}: {exc}")
                log.warning("dead-letter source %s failed: %s", source.name, exc)
                continue
            report.counts[source.name] = count
            DEAD_LETTERS.labels(source.name).set(count)
            await self._export_age(source)
            for channel in self.channels:
                await self._alert(source.name, count, channel, report)
        LAST_CHECK.set(time.time())
        self.checked.set()
        self.checked.clear()
        return report

    async def run(
        self,
        interval: float,
        stop: asyncio.Event | None = None,
        on_report: Callable[[CheckReport], None] | None = None,
    ) -> None:
        """Check every ``interval`` seconds until ``stop`` is set; ``on_report`` gets each
        check's report. A failed check (the state store unreachable) is reported as an error
        and tried again at the next interval."""
        if interval <= 0:
            raise ConfigError(f"monitor interval must be positive, got {interval}")
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                report = await self.check_once()
            except Exception as exc:
                log.error("dead-letter check failed: %s: %s", type(exc).__name__, exc)
                report = CheckReport(errors=[f"check failed: {type(exc).__name__}: {exc}"])
            if on_report is not None:
                on_report(report)
            try:
                async with asyncio.timeout(interval):
                    await stop.wait()
            except TimeoutError:
                pass

    async def _export_age(self, source: DeadLetterSource) -> None:
        if isinstance(source, PendingAgeSource):
            age = await source.oldest_pending_age()
            OLDEST_PENDING.labels(source.name).set(0 if age is None else age.total_seconds())

    async def _alert(
        self, source: str, count: int, channel: AlertChannel, report: CheckReport
    ) -> None:
        try:
            async with self._state.hold(source, channel.name) as slot:
                if slot is None:
                    report.skipped += 1
                    return
                kind, level = self.rule.decide(count, slot.level)
                if kind is not None:
                    alert = Alert(
                        id=f"tether-deadletters.{source}.{channel.name}.{slot.generation + 1}",
                        source=source,
                        kind=kind,
                        count=count,
                        previous=slot.level,
                        threshold=self.rule.threshold,
                        at=self._clock(),
                    )
                    await channel.send(alert)
                    report.sent.append(alert)
                    ALERTS.labels(source, kind.value, "sent").inc()
                if level != slot.level:
                    slot.save(level)
        except AlertDeliveryError as exc:
            ALERTS.labels(source, "any", "failed").inc()
            report.errors.append(str(exc))
            log.warning("%s (tried again at the next check)", exc)


def _check_names(what: str, names: Sequence[str]) -> None:
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{what} name {name!r}: use 1-64 lower-case letters, digits and . _ : -"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"two {what}s share a name: {sorted(names)}")
