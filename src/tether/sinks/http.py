"""Generic HTTP sink: each event POSTed to one URL (n8n and other workflow webhooks).

* One request per event, in CloudEvents **binary content mode**: the body is the payload's JSON
  text, untouched, with ``Content-Type`` its ``datacontenttype``; every other attribute travels
  as a ``ce-<name>`` header (``ce-id``, ``ce-type``, ``ce-source``, ``ce-subject``, ``ce-time``,
  ``ce-specversion`` and Tether's extensions), percent-encoded as the HTTP binding says.
  ``X-Event-Type`` repeats the type and ``X-Idempotency-Key`` the event id, for workflow tools
  that read plain headers.
* Signed like Tether's webhooks (Standard Webhooks: ``webhook-id`` = the event id, so a repeat
  carries the same id, ``webhook-timestamp``, ``webhook-signature`` with every secret given).
* Requests go through :func:`tether.net.safe_client`: the SSRF guard is on, and private
  addresses (a self-hosted n8n, tests on loopback) must be allowed by name or CIDR.
* Per event: 2xx → OK; 408, 425, 429, 5xx, a lost connection or a timeout → failed, retryable;
  a redirect (never followed) and any other 4xx → failed, not retryable.
* 429 or 503 with ``Retry-After`` → the event is deferred (:meth:`Outcome.deferred`: no attempt
  spent) for that wait, capped by ``retry_after_cap``, and no request is sent before then: the
  call's other events not yet sent are deferred the same way, those already taken stay OK.
* The whole call → :class:`SinkUnavailableError` (the relay pauses the sink, no attempt spent)
  when no request got an answer (target down) or the destination is refused by the SSRF policy.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks.base import OK, Outcome, Sink, SinkFeatures
from tether.sinks.registry import SinkPlugin, SinkSettings, hint

if TYPE_CHECKING:
    import httpx

    from tether.net import SsrfPolicy
    from tether.webhooks.signing import WebhookSecret

USER_AGENT = "tether-http-sink"
DEFAULT_MAX_BODY = 1024 * 1024
# Retryable answers: the request may succeed later without any change on our side.
RETRYABLE_STATUS = frozenset({408, 425, 429})
# Answers that, with a Retry-After, mean "the whole target, not this event: come back later".
LATER_STATUS = frozenset({429, 503})
_SNIPPET = 300
# The HTTP binding's safe set: printable ASCII except space, double quote and percent.
_CE_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "x-event-type", "x-idempotency-key"}
)
_RESERVED_PREFIXES = ("ce-", "webhook-")


def where(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: paths of workflow webhooks are often secrets."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def header_value(value: str) -> str:
    """A CloudEvents attribute as an HTTP header value (percent-encoded, UTF-8)."""
    return quote(value, safe=_CE_SAFE)


def cloudevent_headers(event: Event) -> dict[str, str]:
    """The binary-mode headers of ``event``: ``ce-*`` and ``Content-Type``."""
    attrs = event.cloudevent_attributes()
    headers = {"content-type": attrs.pop("datacontenttype")}
    attrs["time"] = _rfc3339(event.created_at)
    headers.update({f"ce-{name}": header_value(value) for name, value in attrs.items()})
    return headers


def _rfc3339(at: datetime) -> str:
    text = at.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date); None
    when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text[:9]))
    try:
        at = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, at.timestamp() - current)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Custom headers, lower-cased; ConfigError naming the first bad one."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if not _TOKEN.fullmatch(name):
            raise ConfigError(f"header name {name!r} is not an HTTP token")
        if key in RESERVED_HEADERS or key.startswith(_RESERVED_PREFIXES):
            raise ConfigError(f"header {name!r} is set by the sink and cannot be configured")
        if not (value.isascii() and value.isprintable()) or len(value) > 8192:
            raise ConfigError(
                f"header {name!r}: the value must be printable ASCII on one line, <= 8192"
            )
        checked[key] = value
    return checked


@dataclass(frozen=True, slots=True)
class _Later:
    """The target asked us to come back in ``seconds``."""

    seconds: float
    status: int


@dataclass(frozen=True, slots=True)
class _Down:
    """No answer: the connection failed before any response."""

    error: str


_Result = Outcome | _Later | _Down


def _as_outcome(result: _Result, cap: float) -> Outcome:
    if isinstance(result, _Down):
        return Outcome.failed(f"no answer: {result.error}")
    if isinstance(result, _Later):
        wait = min(result.seconds, cap)
        asked = f"HTTP {result.status}" if result.status else "another request's answer"
        return Outcome.deferred(f"{asked} asked to wait (Retry-After {wait:g}s)", wait)
    return result


class HttpSink:
    """POST events to one URL. Build with :meth:`connect` (or give an ``httpx.AsyncClient``)."""

    features = SinkFeatures(
        dedups_by_id=False, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        name: str = "http",
        secrets: Sequence[WebhookSecret] = (),
        headers: Mapping[str, str] | None = None,
        max_in_flight: int = 16,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        retry_after_cap: float = 300.0,
    ) -> None:
        if not 1 <= max_in_flight <= 1024:
            raise ConfigError(f"max_in_flight must be 1..1024, got {max_in_flight!r}")
        if max_body_bytes <= 0 or retry_after_cap <= 0:
            raise ConfigError("max_body_bytes and retry_after_cap must be positive")
        self.name = name
        self.url = url
        self._client = client
        self._secrets = tuple(secrets)
        self._headers = {"user-agent": USER_AGENT, **check_headers(headers or {})}
        self._slots = asyncio.Semaphore(max_in_flight)
        self.max_body_bytes = max_body_bytes
        self.retry_after_cap = retry_after_cap
        self._not_before = 0.0
        self._closed = False
        self.stats = {"posted": 0, "ok": 0, "failed": 0, "deferred": 0}

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        policy: SsrfPolicy | None = None,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        **options: Any,
    ) -> HttpSink:
        """A sink with its own SSRF-guarded client; ConfigError when ``url`` is refused."""
        from tether import net

        client = net.checked_client(
            url,
            policy,
            what=f"sink {options.get('name', 'http')!r}",
            connect_timeout=connect_timeout,
            total_timeout=total_timeout,
        )
        return cls(client, url, **options)

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        if not events:
            return []
        wait = self._not_before - time.monotonic()
        if wait > 0:
            self.stats["deferred"] += len(events)
            why = f"{where(self.url)} asked to wait (Retry-After); {wait:.1f}s to go"
            return [Outcome.deferred(why, wait)] * len(events)
        results = await asyncio.gather(*(self._send(event) for event in events))
        return self._settle(results)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------

    def _settle(self, results: Sequence[_Result]) -> list[Outcome]:
        later = sum(isinstance(r, _Later) for r in results)
        if later:
            self.stats["deferred"] += later
        elif all(isinstance(r, _Down) for r in results):
            first = results[0]
            assert isinstance(first, _Down)
            raise SinkUnavailableError(
                f"sink {self.name!r}: cannot reach {where(self.url)}: {first.error}"
            )
        return [_as_outcome(r, self.retry_after_cap) for r in results]

    async def _send(self, event: Event) -> _Result:
        if len(event.data) > self.max_body_bytes:
            return Outcome.failed(
                f"payload of {len(event.data)} bytes is over max_body_bytes "
                f"({self.max_body_bytes})",
                retryable=False,
            )
        async with self._slots:
            wait = self._not_before - time.monotonic()
            if wait > 0:  # another request of this call met a Retry-After
                return _Later(wait, 0)
            return await self._post(event)

    def request_headers(self, event: Event, timestamp: int | None = None) -> dict[str, str]:
        """Every header of ``event``'s request (signed when the sink has secrets)."""
        headers = {
            **self._headers,
            **cloudevent_headers(event),
            "x-event-type": event.type,
            "x-idempotency-key": str(event.id),
        }
        if self._secrets:
            from tether.webhooks import signing

            stamp = int(time.time()) if timestamp is None else timestamp
            headers.update(signing.sign(str(event.id), stamp, event.data, self._secrets))
        return headers

    async def _post(self, event: Event) -> _Result:
        import httpx

        from tether import net

        self.stats["posted"] += 1
        try:
            request = self._client.build_request(
                "POST", self.url, content=event.data, headers=self.request_headers(event)
            )
            response = await self._client.send(request, stream=True)
            try:
                snippet = b"" if response.is_success else await net.read_bounded(response, _SNIPPET)
            finally:
                await response.aclose()
        except net.UnsafeDestination as exc:
            return _Down(f"refused by the SSRF policy: {exc}")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return _Down(f"{type(exc).__name__}: {exc}")
        except httpx.TimeoutException as exc:
            self.stats["failed"] += 1
            return Outcome.failed(f"no answer in time ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            self.stats["failed"] += 1
            return Outcome.failed(f"{type(exc).__name__}: {exc}")
        return self._outcome(response.status_code, response.headers, snippet)

    def _outcome(self, status: int, headers: httpx.Headers, snippet: bytes) -> _Result:
        if 200 <= status < 300:
            self.stats["ok"] += 1
            return OK
        wait = retry_after(headers.get("retry-after"))
        if status in LATER_STATUS and wait is not None:
            # Held at once, so this call's requests still queued for a slot are not sent.
            wait = min(wait, self.retry_after_cap)
            self._not_before = max(self._not_before, time.monotonic() + wait)
            return _Later(wait, status)
        self.stats["failed"] += 1
        text = snippet.decode("utf-8", "replace").strip()
        detail = f"HTTP {status} from {where(self.url)}" + (f": {text}" if text else "")
        if 300 <= status < 400:
            return Outcome.failed(f"{detail} (redirects are not followed)", retryable=False)
        return Outcome.failed(detail, retryable=status in RETRYABLE_STATUS or status >= 500)


# -- the plugin ---------------------------------------------------------------------------------


class HttpSettings(SinkSettings):
    url: str | None = hint(
        "an http:// or https:// URL", default=None, pattern=r"^https?://[^\s/@]+(/\S*)?$"
    )
    secrets: tuple[SecretStr, ...] = hint(
        "a list of whsec_<base64> secrets (the first is the current one)", default=()
    )
    headers: dict[str, SecretStr] = hint("a table of header names to values", default={})
    allow: tuple[str, ...] = hint(
        "a list of host names or CIDRs the SSRF guard lets through (private deployments)",
        default=(),
    )
    max_in_flight: int = hint("an integer 1..1024", default=16, ge=1, le=1024)
    connect_timeout: float = hint("seconds, > 0 and <= 60", default=5.0, gt=0, le=60)
    # Under the relay's publish_timeout (10 s by default): past it the relay cancels the call
    # and charges every event of it, so the sink's own timeout should fire first.
    total_timeout: float = hint("seconds, > 0 and <= 300", default=8.0, gt=0, le=300)
    max_body_bytes: int = hint("bytes, 1..33554432", default=DEFAULT_MAX_BODY, ge=1, le=32 << 20)
    retry_after_cap: float = hint("seconds, > 0 and <= 86400", default=300.0, gt=0, le=86_400)


def parse_secrets(
    values: Sequence[SecretStr], what: str = "sinks.http.secrets"
) -> list[WebhookSecret]:
    """The secrets of a settings list; ConfigError naming the bad one by position only.

    Checked here, when the sink opens, rather than by a model validator: a settings error
    quotes the value it refused, and these values are secrets."""
    from tether.webhooks.signing import WebhookSecret

    parsed = []
    for n, value in enumerate(values, 1):
        try:
            parsed.append(WebhookSecret.parse(value.get_secret_value()))
        except ValueError as exc:
            raise ConfigError(f"{what}: secret {n}: {exc}") from None
    return parsed


async def _open_http(s: HttpSettings) -> Sink:
    from tether import net

    assert s.url is not None  # enabled() says so
    headers = {k: v.get_secret_value() for k, v in s.headers.items()}
    try:
        check_headers(headers)
    except ConfigError as exc:
        raise ConfigError(f"sinks.http.headers: {exc}") from None
    return await HttpSink.connect(
        s.url,
        policy=net.SsrfPolicy(allow=s.allow),
        connect_timeout=s.connect_timeout,
        total_timeout=s.total_timeout,
        name="http",
        secrets=parse_secrets(s.secrets),
        headers=headers,
        max_in_flight=s.max_in_flight,
        max_body_bytes=s.max_body_bytes,
        retry_after_cap=s.retry_after_cap,
    )


PLUGIN: SinkPlugin[HttpSettings] = SinkPlugin(
    "http",
    HttpSettings,
    _open_http,
    enabled=lambda s: s.url is not None,
    enable_hint="sinks.http.url (POST each event to a workflow webhook, CloudEvents binary mode)",
)
