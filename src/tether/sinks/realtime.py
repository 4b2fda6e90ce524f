"""The ``realtime`` sink: outbox events to WebSocket channels, through the gateways' backplane.

Each event becomes one publication on every channel its routing rules name (see
:mod:`tether.realtime.routing`); the publication's data is the event (``id``, ``type``,
``time``, ``tenant``, ``subject``, ``payload``) and its tags carry ``event_id`` and ``type``
so clients can de-duplicate. It is written to the channel's history and fanned out by one
Redis script per publication, pipelined per batch; while Redis is down the sink raises
:class:`SinkUnavailableError` and the relay defers the events without spending attempts.
Re-publishing an event appends it again (clients de-duplicate by ``event_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import field_validator

from tether.core.envelope import Event
from tether.core.errors import SinkError, SinkUnavailableError
from tether.realtime.backplane import Backplane, BackplaneUnavailable
from tether.realtime.protocol import publication_body
from tether.realtime.routing import Routes, Unroutable
from tether.sinks.base import OK, Outcome, SinkFeatures
from tether.sinks.registry import SinkPlugin, SinkSettings, hint


def event_publication(event: Event) -> bytes:
    """The publication object (without offset) of ``event``."""
    data = orjson.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "time": event.created_at.isoformat(),
            "tenant": event.tenant_id,
            "subject": event.subject,
            "payload": orjson.Fragment(event.data),
        }
    )
    return publication_body(data, {"event_id": str(event.id), "type": event.type})


class RealtimeSink:
    features = SinkFeatures(
        dedups_by_id=False, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(self, backplane: Backplane, routes: Routes, *, name: str = "realtime") -> None:
        self.name = name
        self.backplane = backplane
        self.routes = routes
        self._closed = False

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        outcomes: list[Outcome] = []
        items: list[tuple[str, bytes]] = []
        for event in events:
            try:
                channels = self.routes.channels(event)
            except Unroutable as exc:
                outcomes.append(Outcome.failed(str(exc), retryable=False))
                continue
            body = event_publication(event)
            items.extend((channel.key, body) for channel in channels)
            outcomes.append(OK)
        if items:
            try:
                await self.backplane.publish_many(items)
            except BackplaneUnavailable as exc:
                raise SinkUnavailableError(f"sink {self.name!r}: {exc}") from None
        return outcomes

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.backplane.close()


class RealtimeSinkSettings(SinkSettings):
    url: str | None = hint(
        "a redis://, rediss:// or unix:// URL", default=None, pattern=r"^(rediss?|unix)://.+"
    )
    prefix: str = hint(
        "a key prefix like tether:rt", default="tether:rt", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"
    )
    history_size: int = hint("an integer 1..1000000", default=1000, ge=1, le=1_000_000)
    history_ttl: int = hint("seconds, 1..31536000", default=86_400, ge=1, le=31_536_000)
    routes: dict[str, list[str]] = hint(
        'a table of event type = ["org:{tenant}", "topic:name", ...]', default_factory=dict
    )

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        Routes(value)  # raises ValueError naming the bad rule
        return value


async def _open(settings: RealtimeSinkSettings) -> Any:
    from tether.realtime.redis import RedisBackplane

    assert settings.url is not None  # enabled() says so
    backplane = RedisBackplane(
        settings.url,
        prefix=settings.prefix,
        history_size=settings.history_size,
        history_ttl=settings.history_ttl,
    )
    return RealtimeSink(backplane, Routes(settings.routes))


REALTIME: SinkPlugin[RealtimeSinkSettings] = SinkPlugin(
    "realtime",
    RealtimeSinkSettings,
    _open,
    enabled=lambda s: s.url is not None and bool(s.routes),
    enable_hint="sinks.realtime.url and sinks.realtime.routes (WebSocket channels via Redis)",
)
