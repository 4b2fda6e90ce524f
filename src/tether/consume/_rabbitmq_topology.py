"""The RabbitMQ consumer's names, queue arguments and header bookkeeping (no I/O).

One consumer owns one durable queue ``<queue>`` bound to the sink's exchange, plus:

* ``<queue>.retry.<ms>``: one queue per distinct backoff delay. Every message in it has the
  same TTL (``x-message-ttl`` = the delay), so the oldest always expires first and a long delay
  never holds a short one back; an expired message is dead-lettered through the default
  exchange back onto ``<queue>``.
* ``<queue>.dlq``: the dead-letter queue (a classic queue), written through the default
  exchange.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from tether.consume import deadletter
from tether.core.errors import ConfigError

QueueType = Literal["quorum", "classic"]

DELIVERIES = "x-tether-deliveries"
"""The hand-out number a copy's first delivery has: 1 + the hand-outs before it was copied."""
DLQ_ID = "x-tether-dlq-id"
"""The dead-letter copy's own id, what ``dlq list`` shows and ``dlq replay`` selects by."""
BROKER_HEADERS = frozenset(
    {
        "x-delivery-count",
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
"""What the broker writes about one copy's journey: never carried onto a new copy (a copied
``x-delivery-count`` would count the old copy's redeliveries twice)."""
MAX_DELAY_MS = 86_400_000
_R20 = (100, 112, 125, 140, 160, 180, 200, 224, 250, 280, 315, 355, 400, 450, 500, 560, 630, 710,
        800, 900, 1000)  # fmt: skip
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,254}$")


def check_queue(queue: str) -> str:
    """A consumer queue name: 1-200 of letters, digits, ``. _ : -`` (room for the suffixes)."""
    if not isinstance(queue, str) or not _QUEUE.match(queue):
        raise ConfigError(
            f"RabbitMQ queue name {queue!r} is invalid: 1-200 of letters, digits, . _ : - "
            "starting with a letter or digit"
        )
    if queue.startswith("amq."):
        raise ConfigError(f"RabbitMQ queue name {queue!r} is invalid: 'amq.' is reserved")
    return queue


def check_exchange(exchange: str) -> str:
    if not isinstance(exchange, str) or not _NAME.match(exchange):
        raise ConfigError(
            f"RabbitMQ exchange name {exchange!r} is invalid: 1-255 of letters, digits, . _ : - "
            "starting with a letter or digit (the default exchange cannot be bound)"
        )
    if exchange.startswith("amq."):
        raise ConfigError(f"RabbitMQ exchange name {exchange!r} is invalid: 'amq.' is reserved")
    return exchange


def check_bindings(bindings: Iterable[str]) -> tuple[str, ...]:
    """Topic binding keys: dot-separated words, ``*`` one word, ``#`` zero or more."""
    if isinstance(bindings, str):
        raise ConfigError(f"bindings must be a list of binding keys, got the string {bindings!r}")
    keys = tuple(bindings)
    if not keys:
        raise ConfigError("bindings must list at least one binding key, e.g. ['order.#']")
    for key in keys:
        if not isinstance(key, str) or not key or len(key.encode()) > 255:
            raise ConfigError(f"binding key {key!r} must be 1 to 255 bytes")
        for word in key.split("."):
            if word not in ("*", "#") and ("*" in word or "#" in word):
                raise ConfigError(
                    f"binding key {key!r}: '*' and '#' must be whole words (e.g. 'order.*')"
                )
            if any(not c.isprintable() or c.isspace() for c in word):
                raise ConfigError(f"binding key {key!r} has a blank or unprintable character")
    return keys


def retry_queue(queue: str, ms: int) -> str:
    return f"{queue}.retry.{ms}"


def dlq(queue: str) -> str:
    return f"{queue}.dlq"


def delay_ms(delay: float) -> int:
    """``delay`` seconds in whole milliseconds, rounded to the nearest Renard R20 preferred
    number (1.0, 1.12, 1.25, 1.4, 1.6 ... 9.0 per decade, at most about 6 % off): 10.7 s ->
    11.2 s, 0.3 s -> 315 ms. Jittered delays then share a few queues (two or three per backoff
    step with 10 % jitter) instead of one each. Below 10 ms the delay is kept as it is."""
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"retry delay must be a finite number of seconds >= 0, got {delay!r}")
    ms = min(round(delay * 1000), MAX_DELAY_MS)
    if ms < 10:
        return ms
    scale = 10.0 ** (len(str(ms)) - 3)  # ms = mantissa * scale, mantissa in [100, 1000)
    mantissa = ms / scale
    best = min(_R20, key=lambda r: abs(math.log(r / mantissa)))
    return min(round(best * scale), MAX_DELAY_MS)


def nearest(ms: int, known: Iterable[int]) -> int:
    """The known delay closest to ``ms`` by ratio (1 s is nearer 2 s than 10 ms is to 1 s)."""
    return min(known, key=lambda k: abs(math.log((k + 1) / (ms + 1))))


def main_arguments(queue: str, queue_type: QueueType) -> dict[str, Any]:
    # A message the broker itself gives up on (a quorum queue's delivery limit on RabbitMQ
    # 4.x) lands in the dead-letter queue instead of being dropped.
    return {
        "x-queue-type": queue_type,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dlq(queue),
    }


def retry_arguments(queue: str, queue_type: QueueType, ms: int) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "x-queue-type": queue_type,
        "x-message-ttl": ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
    }
    if queue_type == "quorum":
        # Quorum queues dead-letter at most once unless told otherwise; at-least-once needs
        # reject-publish overflow.
        arguments["x-dead-letter-strategy"] = "at-least-once"
        arguments["x-overflow"] = "reject-publish"
    return arguments


def dlq_arguments() -> dict[str, Any]:
    # Always a classic queue: listing peeks (basic.get, then basic.nack with requeue), and a
    # classic queue puts a requeued message back in its place, where a quorum queue moves it
    # behind the rest and counts the peek as a delivery (a delivery limit could drop it).
    return {"x-queue-type": "classic"}


def text(value: object) -> str:
    """A header value as a string, whatever the publisher put there (never raises)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def copied(headers: Mapping[str, Any] | None, drop: Iterable[str] = ()) -> dict[str, Any]:
    """The headers a new copy carries: the original's, minus broker bookkeeping and ``drop``."""
    gone = BROKER_HEADERS.union(drop)
    return {k: v for k, v in (headers or {}).items() if k not in gone}


def replayed(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A dead letter's headers as a replay sends them: failure record and counts removed."""
    return copied(headers, (*deadletter.NAMES, DELIVERIES, DLQ_ID))


def handed_out(headers: Mapping[str, Any] | None, redelivered: bool) -> int:
    """Which hand-out this delivery is: the copy's own number (:data:`DELIVERIES`, 1 when
    absent) plus the broker's redeliveries of this copy. A quorum queue counts those
    (``x-delivery-count``, absent on the first); a classic queue only flags a redelivery, so
    it counts as one (a lower bound)."""
    values = headers or {}
    first = _count(values.get(DELIVERIES), default=1)
    if "x-delivery-count" in values:
        return first + _count(values.get("x-delivery-count"), default=0)
    return first + (1 if redelivered else 0)


def dlq_id(headers: Mapping[str, Any] | None, message_id: str | None, body: bytes) -> str:
    values = headers or {}
    if DLQ_ID in values:
        return text(values[DLQ_ID])
    if message_id:  # dead-lettered by the broker itself: no id of ours
        return message_id
    return hashlib.sha256(body).hexdigest()[:32]


def dead_letter_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The failure record of a dead letter; one the broker dead-lettered (no record of ours)
    says so from its ``x-first-death-*`` headers."""
    values = {k: text(v) for k, v in (headers or {}).items()}
    if deadletter.KIND not in values and "x-first-death-reason" in values:
        values[deadletter.KIND] = f"broker:{values['x-first-death-reason']}"
        values.setdefault(deadletter.ORIGIN, values.get("x-first-death-queue", "?"))
    return values


def _count(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    raw = text(value).strip()
    return int(raw) if raw.isdigit() else default
