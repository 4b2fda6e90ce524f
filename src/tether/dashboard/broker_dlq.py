"""Consumers' dead letters held by brokers: which ones the dashboard shows, and reading and
replaying them through the broker adapters' own dead-letter boxes
(:func:`tether.consume.boxes.dead_letter_box`, the same as ``tether consume dlq`` uses).

A broker queue can hold any number of dead letters, and the adapters list them oldest first
without an offset, so a page shows the *first* ``limit`` of each consumer and says so; the
confirmation of a replay-all counts up to :data:`COUNT_CAP`. A broker that cannot be reached
is reported with the consumer it belongs to, never raised to the page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tether.consume.boxes import Broker, broker_of, dead_letter_box
from tether.consume.port import DeadLetter
from tether.core.errors import ConfigError
from tether.core.redact import mask_secrets, mask_url

log = logging.getLogger("tether.dashboard")
T = TypeVar("T")

COUNT_CAP = 1000
"""Dead letters a replay-all confirmation counts at most (each is read from the broker)."""
BROKER_TIMEOUT = 10.0
"""Seconds listing or counting may take before the page says the broker did not answer (the
adapters' own connect timeouts are 5 s)."""
REPLAY_TIMEOUT = 120.0
"""Seconds a replay may take: the adapters move dead letters one at a time, each confirmed on
its origin before it leaves the dead-letter destination, so one cut short loses nothing."""


@dataclass(frozen=True, slots=True)
class ConsumerDlq:
    """One consumer's dead-letter destination: the fields ``tether consume dlq`` takes."""

    broker: Broker
    url: str = field(repr=False)  # may carry a password: shown only through shown_url
    source: str
    consumer: str

    def __post_init__(self) -> None:
        for name in ("url", "source", "consumer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or any(c.isspace() for c in value):
                raise ConfigError(f"consumer dead letters: {name} must be one word, got {value!r}")

    @property
    def shown_url(self) -> str:
        """The URL with its password masked: what pages and logs show."""
        return mask_url(self.url)

    @property
    def label(self) -> str:
        return f"{self.broker.value} {self.source} / {self.consumer}"


def checked(dlqs: Sequence[ConsumerDlq]) -> tuple[ConsumerDlq, ...]:
    """The consumers as a tuple; a ConfigError on anything else or on one listed twice."""
    found = tuple(dlqs)
    for d in found:
        if not isinstance(d, ConsumerDlq):
            raise ConfigError(f"dashboard consumer_dlqs: ConsumerDlq values only, got {d!r:.60}")
    labels = [d.label for d in found]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ConfigError(f"dashboard consumer_dlqs: listed twice: {', '.join(twice)}")
    return found


def parse_consumer_dlqs(text: str, origin: str = "consumer dead-letter file") -> list[ConsumerDlq]:
    """Lines ``<broker> <url> <source> <consumer>`` (``#`` starts a comment); a ConfigError
    naming the line otherwise. The URL is never repeated in an error (it may hold a password)."""
    found: list[ConsumerDlq] = []
    for n, raw in enumerate(text.splitlines(), 1):
        parts = raw.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) != 4:
            raise ConfigError(
                f"{origin} line {n}: expected '<broker> <url> <source> <consumer>', "
                f"got {len(parts)} field(s)"
            )
        try:
            found.append(ConsumerDlq(broker_of(parts[0]), parts[1], parts[2], parts[3]))
        except ConfigError as exc:
            raise ConfigError(f"{origin} line {n}: {exc}") from None
    return found


@dataclass(frozen=True, slots=True)
class Listing:
    """The first ``limit`` dead letters of one consumer, or why they could not be read."""

    index: int
    dlq: ConsumerDlq
    limit: int
    letters: Sequence[DeadLetter] = field(default_factory=list)
    error: str | None = None

    @property
    def capped(self) -> bool:
        """More may wait behind the ones shown."""
        return len(self.letters) >= self.limit


class BrokerFailed(Exception):
    """A broker step that failed, with the message the page shows (password masked)."""


async def _run(
    dlq: ConsumerDlq, what: str, step: Awaitable[T], timeout: float = BROKER_TIMEOUT
) -> T:
    """Run one broker step under ``timeout``; any failure becomes BrokerFailed naming the
    consumer and the broker (the page shows it instead of failing)."""
    try:
        async with asyncio.timeout(timeout):
            return await step
    except TimeoutError:
        message = f"{dlq.label}: {dlq.broker.value} at {dlq.shown_url} did not answer {what} "
        raise BrokerFailed(message + f"within {timeout:g} s") from None
    except Exception as exc:  # any adapter or driver error: shown, never a 500
        log.warning("dashboard: %s %s failed: %r", dlq.label, what, exc)
        text = mask_secrets(f"{type(exc).__name__}: {exc}")
        message = f"{dlq.label}: {dlq.broker.value} at {dlq.shown_url} failed {what}: {text}"
        raise BrokerFailed(message) from None


async def _list(dlq: ConsumerDlq, limit: int) -> list[DeadLetter]:
    async with dead_letter_box(dlq.broker, dlq.url, dlq.source, dlq.consumer) as box:
        return list(await box.list(limit))


async def _replay(dlq: ConsumerDlq, ids: Sequence[str] | None) -> int:
    async with dead_letter_box(dlq.broker, dlq.url, dlq.source, dlq.consumer) as box:
        return await box.replay(ids)


async def listing(index: int, dlq: ConsumerDlq, limit: int) -> Listing:
    try:
        letters = await _run(dlq, "listing its dead letters", _list(dlq, limit))
    except BrokerFailed as exc:
        return Listing(index, dlq, limit, error=str(exc))
    return Listing(index, dlq, limit, letters)


async def listings(dlqs: Sequence[ConsumerDlq], limit: int) -> list[Listing]:
    """Every consumer's first ``limit`` dead letters, the brokers asked concurrently."""
    return list(await asyncio.gather(*(listing(i, d, limit) for i, d in enumerate(dlqs))))


async def count(dlq: ConsumerDlq, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many dead letters wait (read up to ``cap + 1``), and whether that is all of them.
    Raises BrokerFailed."""
    letters = await _run(dlq, "counting its dead letters", _list(dlq, cap + 1))
    return min(len(letters), cap), len(letters) <= cap


async def replay(dlq: ConsumerDlq, ids: Sequence[str] | None) -> int:
    """Put these dead letters (every one there now when None) back on their origin through
    the adapter; how many went. Raises BrokerFailed."""
    return await _run(dlq, "replaying", _replay(dlq, ids), REPLAY_TIMEOUT)
