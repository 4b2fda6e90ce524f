"""One attempt at one delivery: sign the body, POST it, and say what the answer means.

Only a 2xx answer is success. 410 Gone means the receiver wants no more (the endpoint is
disabled). Other 4xx answers (except 408, 425 and 429) are permanent by default: the same
request will be refused again. 3xx (never followed), 408, 425, 429, 5xx, timeouts and
connection failures are retried; a ``Retry-After`` answer sets the wait, up to a cap. The
error text names the status or the failure, never a secret or a request header.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tether import net
from tether.core import jsonutil
from tether.webhooks.model import Endpoint
from tether.webhooks.signing import sign

USER_AGENT = "tether-webhooks/1"
_RETRYABLE_4XX = frozenset({408, 425, 429})


class Verdict(enum.StrEnum):
    OK = "ok"
    RETRY = "retry"
    PERMANENT = "permanent"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt produced, as it goes into the delivery log."""

    verdict: Verdict
    status: int | None
    latency_ms: float
    response: str | None
    error: str | None
    retry_after: float | None = None

    @property
    def endpoint_failed(self) -> bool:
        """Counts against the endpoint's circuit breaker: it is down, slow or overloaded (a
        4xx says it is up and refusing this one request)."""
        if self.verdict is Verdict.OK:
            return False
        return self.status is None or self.status >= 500 or self.status == 429


@dataclass(frozen=True, slots=True)
class SendPolicy:
    max_payload_bytes: int = 256 * 1024
    response_snippet_bytes: int = 1024
    permanent_4xx: bool = True
    """Dead-letter on a 4xx other than 408/410/425/429; False retries them per the schedule."""


def webhook_id(delivery_id: Any) -> str:
    """The ``webhook-id``: the delivery's id, the same on every retry and replay of it."""
    return f"msg_{delivery_id}"


def body_of(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else jsonutil.dumps(payload)


def headers_for(endpoint: Endpoint, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    headers = dict(endpoint.settings.headers)
    headers["content-type"] = "application/json"
    headers.setdefault("user-agent", USER_AGENT)
    # The timestamp is wall-clock time: receivers compare it with theirs.
    headers.update(sign(msg_id, int(time.time()), body, endpoint.secrets.active(now)))
    return headers


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` value (delta-seconds or an HTTP date); None if absent
    or malformed (then the schedule decides)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text[:10]))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def verdict_of(status: int, policy: SendPolicy) -> Verdict:
    if 200 <= status < 300:
        return Verdict.OK
    if status == 410:
        return Verdict.GONE
    if 400 <= status < 500 and status not in _RETRYABLE_4XX and policy.permanent_4xx:
        return Verdict.PERMANENT
    return Verdict.RETRY


async def send(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    delivery_id: Any,
    payload: Any,
    *,
    policy: SendPolicy,
    now: datetime,
) -> Answer:
    started = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    body = body_of(payload)
    if len(body) > policy.max_payload_bytes:
        too_big = f"body of {len(body)} bytes is over the {policy.max_payload_bytes} byte limit"
        return Answer(Verdict.PERMANENT, None, 0.0, None, too_big)
    headers = headers_for(endpoint, webhook_id(delivery_id), body, now)
    try:
        async with client.stream("POST", endpoint.url, content=body, headers=headers) as resp:
            raw = await net.read_bounded(resp, policy.response_snippet_bytes)
            status = resp.status_code
            wait = retry_after(resp.headers.get("retry-after"), now)
    except net.UnsafeDestination as exc:
        return Answer(Verdict.PERMANENT, None, ms(), None, f"destination refused: {exc}")
    except httpx.TimeoutException as exc:
        return Answer(Verdict.RETRY, None, ms(), None, f"timed out: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Answer(Verdict.RETRY, None, ms(), None, f"{type(exc).__name__}: {exc}")
    snippet = raw.decode("utf-8", errors="replace")
    verdict = verdict_of(status, policy)
    error = None if verdict is Verdict.OK else f"HTTP {status}"
    return Answer(verdict, status, ms(), snippet, error, wait)
