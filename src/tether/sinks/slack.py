"""Slack incoming-webhook sink: one message per event, ``text`` plus Block Kit ``blocks``.

* The message: a header (the event type), fields for type, subject, tenant and time, the
  payload as a code block clipped to Slack's 3,000 characters per text block, and a context
  line with the event id and source; ``text`` is the notification's fallback. ``&``, ``<`` and
  ``>`` are escaped everywhere (Slack reads them as markup), never cut in half by clipping.
* Slack takes about one message per second per webhook: a pacer per webhook URL (shared by
  every sink of the process) gives each message its slot. A call sends what fits in
  ``max_wait`` seconds; the rest are deferred (:meth:`Outcome.deferred`: the relay offers them
  again when the pacer has room, no attempt spent). Nothing is dropped.
* 429 with ``Retry-After`` blocks the webhook's pacer until then (capped) and defers that event
  and the call's unsent rest the same way; a connection that fails →
  :class:`SinkUnavailableError` (the whole target is down).
* Per event: 200 → OK; 5xx, 408 and a timeout → failed, retryable; other 4xx (``invalid_payload``,
  ``no_service``: a revoked webhook, ``channel_is_archived``...) → failed, not retryable.
* The webhook URL is a secret: errors name only ``https://hooks.slack.com``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from pydantic import SecretStr

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks.base import OK, Outcome, Sink, SinkFeatures
from tether.sinks.http import retry_after, where
from tether.sinks.registry import SinkPlugin, SinkSettings, hint

if TYPE_CHECKING:
    import httpx

    from tether.net import SsrfPolicy

MAX_BLOCKS = 50
MAX_TEXT = 3000  # characters in one section's text (and what we allow the fallback text)
MAX_HEADER = 150  # a header block's plain text
MAX_FIELD = 2000
_FENCE = "```"
_ZWSP = "\u200b"
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


# -- rendering ----------------------------------------------------------------------------------


def escape(text: str, limit: int | None = None) -> str:
    """``text`` with ``&<>`` escaped for Slack, clipped to ``limit`` characters (counted after
    escaping; an entity is never cut) with an ellipsis."""
    full = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if limit is None or len(full) <= limit:
        return full
    out: list[str] = []
    used = 0
    for ch in text:
        piece = _ENTITIES.get(ch, ch)
        if used + len(piece) > limit - 1:  # one left for the ellipsis
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + "…"


def _code(payload: bytes, limit: int) -> str:
    try:
        pretty = orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        pretty = payload.decode("utf-8", "replace")
    # A ``` inside the payload would end the code block early.
    pretty = pretty.replace(_FENCE, "``" + _ZWSP + "`")
    inner = limit - 2 * len(_FENCE) - 2
    return f"{_FENCE}\n{escape(pretty, inner)}\n{_FENCE}"


def render(event: Event, *, code_chars: int = MAX_TEXT) -> dict[str, Any]:
    """The webhook body for ``event``: ``text`` and ``blocks`` within Slack's limits."""
    if not 50 <= code_chars <= MAX_TEXT:
        raise ConfigError(f"code_chars must be 50..{MAX_TEXT}, got {code_chars}")
    title = event.type + (f" · {event.subject}" if event.subject else "")
    fields = [("Type", event.type), ("Subject", event.subject), ("Tenant", event.tenant_id)]
    fields.append(("Time", event.created_at.isoformat()))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": escape(title, MAX_HEADER)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": escape(f"*{label}*\n{value}", MAX_FIELD)}
                for label, value in fields
                if value
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _code(event.data, code_chars)}},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": escape(f"id {event.id} · source {event.source}", 300)}
            ],
        },
    ]
    assert len(blocks) <= MAX_BLOCKS
    return {"text": escape(title, MAX_TEXT), "blocks": blocks}


# -- pacing -------------------------------------------------------------------------------------


class Pacer:
    """Slots for one webhook: at most one message per ``interval`` seconds, and none before
    a ``Retry-After`` runs out. Reserving is synchronous, so concurrent callers never share a
    slot."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next = 0.0

    def reserve(self, deadline: float) -> float | None:
        """The monotonic time of the caller's slot (now or later), or None when the next free
        one is after ``deadline`` (then nothing is reserved)."""
        now = self._clock()
        slot = max(now, self._next)
        if slot > max(deadline, now):  # a slot free now is always taken
            return None
        self._next = slot + self.interval
        return slot

    def block(self, seconds: float) -> None:
        """Give out no slot for ``seconds`` (a 429's Retry-After)."""
        self._next = max(self._next, self._clock() + seconds)

    def free_in(self) -> float:
        return max(0.0, self._next - self._clock())


_PACERS: dict[str, Pacer] = {}


def pacer_for(url: str, interval: float) -> Pacer:
    """The process's pacer of webhook ``url`` (one per URL, whichever sink asks)."""
    pacer = _PACERS.get(url)
    if pacer is None:
        pacer = _PACERS[url] = Pacer(interval)
    pacer.interval = max(pacer.interval, interval)
    return pacer


# -- the sink -----------------------------------------------------------------------------------


class SlackSink:
    """Post events to one Slack incoming webhook, paced. Build with :meth:`connect`."""

    features = SinkFeatures(
        dedups_by_id=False, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        client: httpx.AsyncClient,
        webhook_url: str,
        *,
        name: str = "slack",
        interval: float = 1.0,
        max_wait: float = 3.0,
        retry_after_cap: float = 300.0,
        code_chars: int = MAX_TEXT,
    ) -> None:
        if interval <= 0 or max_wait < 0 or retry_after_cap <= 0:
            raise ConfigError("interval and retry_after_cap must be positive, max_wait >= 0")
        render(_PROBE, code_chars=code_chars)  # checks code_chars
        self.name = name
        self._client = client
        self._url = webhook_url
        self.pacer = pacer_for(webhook_url, interval)
        self.max_wait = max_wait
        self.retry_after_cap = retry_after_cap
        self.code_chars = code_chars
        self._closed = False
        self.stats = {"posted": 0, "ok": 0, "failed": 0, "deferred": 0}

    @classmethod
    async def connect(
        cls,
        webhook_url: str,
        *,
        policy: SsrfPolicy | None = None,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        **options: Any,
    ) -> SlackSink:
        from tether import net

        client = net.checked_client(
            webhook_url,
            policy,
            what=f"sink {options.get('name', 'slack')!r}",
            connect_timeout=connect_timeout,
            total_timeout=total_timeout,
        )
        return cls(client, webhook_url, **options)

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        deadline = time.monotonic() + self.max_wait
        outcomes: list[Outcome] = []
        for event in events:
            slot = self.pacer.reserve(deadline)
            if slot is None:
                why = "paced: Slack takes one message per second per webhook"
                return outcomes + self._later(why, len(events) - len(outcomes))
            pause = slot - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # the slot Slack's rate limit gives this message
            outcome = await self._post(event)
            outcomes.append(outcome)
            if outcome.defer_s is not None:  # a 429: nothing more before its Retry-After
                return outcomes + self._later(outcome.error or "", len(events) - len(outcomes))
        return outcomes

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    def _later(self, why: str, count: int) -> list[Outcome]:
        """``count`` events deferred until the pacer gives out its next slot."""
        self.stats["deferred"] += count
        return [Outcome.deferred(why, self.pacer.free_in())] * count

    def _down(self, why: str) -> NoReturn:
        raise SinkUnavailableError(f"sink {self.name!r}: {why}")

    async def _post(self, event: Event) -> Outcome:
        import httpx

        from tether import net

        self.stats["posted"] += 1
        body = orjson.dumps(render(event, code_chars=self.code_chars))
        try:
            request = self._client.build_request(
                "POST", self._url, content=body, headers={"content-type": "application/json"}
            )
            response = await self._client.send(request, stream=True)
            try:  # Slack answers "ok" or an error code: never read more than a line
                text = (await net.read_bounded(response, 200)).decode("utf-8", "replace")
            finally:
                await response.aclose()
        except net.UnsafeDestination as exc:
            self._down(f"refused by the SSRF policy: {exc}")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self._down(f"cannot reach {where(self._url)}: {type(exc).__name__}: {exc}")
        except httpx.TimeoutException as exc:
            self.stats["failed"] += 1
            return Outcome.failed(f"Slack did not answer in time ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            self.stats["failed"] += 1
            return Outcome.failed(f"{type(exc).__name__}: {exc}")
        return self._outcome(response, text.strip())

    def _outcome(self, response: httpx.Response, text: str) -> Outcome:
        status = response.status_code
        if status == 200:
            self.stats["ok"] += 1
            return OK
        if status == 429:
            asked = retry_after(response.headers.get("retry-after"))
            wait = min(1.0 if asked is None else asked, self.retry_after_cap)
            self.pacer.block(wait)
            self.stats["deferred"] += 1
            why = f"Slack answered 429 (rate limited); Retry-After {wait:g}s"
            return Outcome.deferred(why, wait)
        self.stats["failed"] += 1
        detail = f"Slack answered {status}" + (f": {text}" if text else "")
        return Outcome.failed(detail, retryable=status >= 500 or status == 408)


_PROBE = Event(id=uuid.UUID(int=0), type="probe", data=b"{}", topic="probe")


# -- the plugin ---------------------------------------------------------------------------------


class SlackSettings(SinkSettings):
    webhook_url: SecretStr | None = hint(
        "a Slack incoming-webhook URL (https://hooks.slack.com/services/...)", default=None
    )
    allow: tuple[str, ...] = hint(
        "a list of host names or CIDRs the SSRF guard lets through (tests, proxies)", default=()
    )
    interval: float = hint("seconds between messages, >= 1 (Slack's limit)", default=1.0, ge=1)
    max_wait: float = hint(
        "seconds, 0..8 (keep it under the relay's publish_timeout)", default=3.0, ge=0, le=8
    )
    code_chars: int = hint("characters, 50..3000", default=MAX_TEXT, ge=50, le=MAX_TEXT)
    retry_after_cap: float = hint("seconds, > 0 and <= 3600", default=300.0, gt=0, le=3600)
    # max_wait plus one request stays under the relay's publish_timeout (10 s by default).
    timeout: float = hint("seconds per request, > 0 and <= 30", default=5.0, gt=0, le=30)


async def _open_slack(s: SlackSettings) -> Sink:
    from tether import net

    assert s.webhook_url is not None  # enabled() says so
    url = s.webhook_url.get_secret_value()
    # Checked here, not by a model validator: a settings error quotes the refused value.
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise ConfigError("sinks.slack.webhook_url must be an https:// URL (not shown: secret)")
    return await SlackSink.connect(
        url,
        policy=net.SsrfPolicy(allow=s.allow),
        connect_timeout=min(5.0, s.timeout),
        total_timeout=s.timeout,
        name="slack",
        interval=s.interval,
        max_wait=s.max_wait,
        code_chars=s.code_chars,
        retry_after_cap=s.retry_after_cap,
    )


PLUGIN: SinkPlugin[SlackSettings] = SinkPlugin(
    "slack",
    SlackSettings,
    _open_slack,
    enabled=lambda s: s.webhook_url is not None,
    enable_hint="sinks.slack.webhook_url (a Slack incoming webhook, one message per event)",
)
