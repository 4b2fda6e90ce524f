"""The alert rule ("alert on increase, reset when zero", once per level) and the monitor over
the in-memory state port, with an in-memory alert channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tether.core.errors import ConfigError
from tether.ops.alerts import Alert, AlertDeliveryError, AlertKind, Rule
from tether.ops.alerts_state import MemoryAlertState
from tether.ops.deadletters import DeadLetterMonitor, DeadLetterSource

T, INC, C = AlertKind.THRESHOLD, AlertKind.INCREASE, AlertKind.CLEARED


class Counts:
    """A source whose dead count the test sets."""

    def __init__(self, name: str = "outbox", count: int = 0) -> None:
        self.name = name
        self.count = count

    async def dead_count(self) -> int:
        if self.count < 0:
            raise RuntimeError("source down")
        return self.count


class Inbox:
    """An alert channel that keeps what it is sent; ``down`` makes it refuse."""

    def __init__(self, name: str = "slack") -> None:
        self.name = name
        self.alerts: list[Alert] = []
        self.down = False
        self.slow: asyncio.Event | None = None

    async def send(self, alert: Alert) -> None:
        if self.slow is not None:
            await asyncio.wait_for(self.slow.wait(), 5)
        if self.down:
            raise AlertDeliveryError(f"alert channel {self.name!r}: down")
        self.alerts.append(alert)

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("count", "level", "due"),
    [
        (0, 0, (None, 0)),
        (3, 0, (INC, 3)),
        (3, 3, (None, 3)),  # the same level: never again
        (2, 3, (None, 3)),  # shrinking (being replayed): silent, level kept
        (4, 3, (INC, 4)),
        (100, 4, (T, 100)),  # crossing the threshold
        (150, 4, (T, 150)),
        (150, 120, (INC, 150)),  # above it already: growth
        (0, 150, (C, 0)),  # reset when zero
    ],
)
def test_rule(count: int, level: int, due: tuple[AlertKind | None, int]) -> None:
    assert Rule(threshold=100).decide(count, level) == due


def test_rule_without_increase_alerts_only_on_the_threshold() -> None:
    rule = Rule(threshold=10, on_increase=False, notify_cleared=False)
    assert rule.decide(5, 0) == (None, 5)
    assert rule.decide(12, 5) == (T, 12)
    assert rule.decide(0, 12) == (None, 0)
    with pytest.raises(ValueError, match="at least 1"):
        Rule(threshold=0)


def monitor(
    sources: list[DeadLetterSource], channels: list[Inbox], state: MemoryAlertState | None = None
) -> DeadLetterMonitor:
    clock = lambda: datetime(2026, 1, 1, tzinfo=UTC)  # noqa: E731
    return DeadLetterMonitor(
        sources, channels, state or MemoryAlertState(), rule=Rule(100), clock=clock
    )


async def test_alerts_once_per_level_and_reset_at_zero() -> None:
    source, inbox = Counts(), Inbox()
    m = monitor([source], [inbox])
    kinds = []
    for count in (0, 5, 5, 3, 7, 120, 120, 0, 0, 2):
        source.count = count
        report = await m.check_once()
        kinds.append([a.kind for a in report.sent])
    assert kinds == [[], [INC], [], [], [INC], [T], [], [C], [], [INC]]
    assert [a.count for a in inbox.alerts] == [5, 7, 120, 0, 2]
    assert len({a.id for a in inbox.alerts}) == 5


async def test_a_channel_down_gets_the_alert_at_the_next_check_and_the_other_is_not_repeated() -> (
    None
):
    source, slack, hook = Counts(count=10), Inbox("slack"), Inbox("webhook")
    hook.down = True
    m = monitor([source], [slack, hook])
    report = await m.check_once()
    assert len(slack.alerts) == 1 and report.errors == ["alert channel 'webhook': down"]
    hook.down = False
    await m.check_once()
    assert len(slack.alerts) == 1 and len(hook.alerts) == 1
    assert hook.alerts[0].count == 10


async def test_two_monitors_on_one_state_send_a_level_once() -> None:
    source, inbox = Counts(count=150), Inbox()
    inbox.slow = asyncio.Event()
    state = MemoryAlertState()
    first, second = monitor([source], [inbox], state), monitor([source], [inbox], state)
    running = asyncio.create_task(first.check_once())
    await asyncio.sleep(0)  # first holds the slot while it sends
    skipped = await second.check_once()
    inbox.slow.set()
    await running
    await second.check_once()
    assert skipped.skipped == 1
    assert [a.kind for a in inbox.alerts] == [T]


async def test_a_failing_source_does_not_silence_the_others() -> None:
    broken, jobs, inbox = Counts("outbox", -1), Counts("jobs", 3), Inbox()
    report = await monitor([broken, jobs], [inbox]).check_once()
    assert report.counts == {"jobs": 3}
    assert "source outbox: RuntimeError: source down" in report.errors
    assert [a.source for a in inbox.alerts] == ["jobs"]


async def test_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="share a name"):
        monitor([Counts("a"), Counts("a")], [])
    with pytest.raises(ConfigError, match="lower-case"):
        monitor([Counts("Bad Name")], [])


def test_alert_renders_for_slack_and_as_json() -> None:
    alert = Alert("id-1", "outbox", T, 120, 7, 100, datetime(2026, 1, 1, tzinfo=UTC))
    body = alert.to_slack()
    assert body["text"] == "Dead letters over threshold: 120 dead in outbox (threshold 100)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert alert.to_json()["type"] == "tether.deadletters.threshold"
    assert alert.to_json()["count"] == 120


async def test_run_reports_each_check_until_stopped_and_survives_a_failed_check() -> None:
    class BrokenState(MemoryAlertState):
        fail = True

        def hold(self, source: str, channel: str):  # type: ignore[no-untyped-def]
            if self.fail:
                raise RuntimeError("database away")
            return super().hold(source, channel)

    state = BrokenState()
    source, inbox = Counts(count=4), Inbox()
    m = monitor([source], [inbox], state)
    reports = []
    stop = asyncio.Event()

    def on_report(report) -> None:  # type: ignore[no-untyped-def]
        reports.append(report)
        state.fail = False
        if len(reports) == 3:
            stop.set()

    await asyncio.wait_for(m.run(0.01, stop, on_report=on_report), 5)
    assert reports[0].errors == ["check failed: RuntimeError: database away"]
    assert [a.count for a in inbox.alerts] == [4]  # sent by the second check, not repeated
    with pytest.raises(ConfigError, match="interval"):
        await m.run(0)
