"""OpenTelemetry spans along an event's way, joined by the envelope's W3C ``traceparent``.

    HTTP request (the application's span)
      └─ tether.add_event <type>        (producer: its context is stored as the traceparent)
           ├─ tether.outbox.wait        (from the commit's timestamp to the relay's claim)
           └─ tether.publish <topic>    (relay -> sink; the published traceparent is this span)
                └─ tether.consume <type>   (the consumer's handler, in the inbox transaction)

plus one ``tether.relay.claim`` span per batch, linked to the traces of the events it holds.
The relay runs in another process: the trace crosses it through the stored envelope and the
message's ``traceparent`` header, nothing else.

This is the only module that imports ``opentelemetry`` (an import contract holds it). Without
the package every hook is the function it wraps, unchanged; with the API but no SDK tracer
provider set, each hook costs one type check per call and records nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tether.core.envelope import Event

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _INSTALLED = True
except ImportError:  # the otel extra is not installed: every hook below is a no-op
    _INSTALLED = False

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from tether.sinks.base import Outcome, Sink

TRACER = "tether"
log = logging.getLogger("tether.tracing")
F = TypeVar("F", bound=Callable[..., Any])


class _Claimed(Protocol):
    @property
    def event(self) -> Event: ...


_provider: TracerProvider | None = None  # set by use(); None: OpenTelemetry's global one


def use(provider: TracerProvider | None) -> TracerProvider | None:
    """Record Tether's spans with ``provider`` instead of the global tracer provider (None
    goes back to the global one); returns the previous choice."""
    global _provider
    previous, _provider = _provider, provider
    return previous


def _current() -> TracerProvider:
    return _provider if _provider is not None else _trace.get_tracer_provider()


def installed() -> bool:
    return _INSTALLED


# Whether the global provider records spans is looked up at most once a second while it does
# not (the lookup reads os.environ: microseconds, too dear for every event), and never again
# once it does: OpenTelemetry lets the global provider be set only once.
RECHECK_SECONDS = 1.0
_global_on = False
_recheck_at = 0.0


def _recording(provider: object) -> bool:
    return not isinstance(provider, _trace.ProxyTracerProvider | _trace.NoOpTracerProvider)


def active() -> bool:
    """True when spans would be recorded: a provider given to :func:`use`, or a global SDK
    tracer provider (seen within :data:`RECHECK_SECONDS` of being set)."""
    global _global_on, _recheck_at
    if not _INSTALLED:
        return False
    if _provider is not None:
        return _recording(_provider)
    if _global_on:
        return True
    now = time.monotonic()
    if now < _recheck_at:
        return False
    _recheck_at = now + RECHECK_SECONDS
    _global_on = _recording(_trace.get_tracer_provider())
    return _global_on


def _tracer() -> Tracer:
    return _current().get_tracer(TRACER)


def traceparent_of(span: Span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def context_of(traceparent: str | None) -> Context | None:
    """The remote parent a stored or received ``traceparent`` names (None if there is none)."""
    if traceparent is None or not _INSTALLED:
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


# -- producer ---------------------------------------------------------------------------------


def _producer_span(type: str) -> Any:
    return _tracer().start_as_current_span(
        f"tether.add_event {type}",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "tether", "messaging.operation.type": "create"},
    )


def traced_add_event(fn: F) -> F:
    """``add_event`` in a producer span whose context becomes the event's ``traceparent``
    (unless the caller gave one)."""
    if not _INSTALLED:
        return fn

    @functools.wraps(fn)
    async def wrapper(target: object, type: str, payload: object, **kwargs: Any) -> Any:
        if not active():
            return await fn(target, type, payload, **kwargs)
        with _producer_span(type) as span:
            if kwargs.get("traceparent") is None:
                kwargs["traceparent"] = traceparent_of(span)
            ref = await fn(target, type, payload, **kwargs)
            span.set_attribute("messaging.message.id", str(ref.id))
            return ref

    return wrapper  # type: ignore[return-value]


def traced_add_event_sync(fn: F) -> F:
    if not _INSTALLED:
        return fn

    @functools.wraps(fn)
    def wrapper(target: object, type: str, payload: object, **kwargs: Any) -> Any:
        if not active():
            return fn(target, type, payload, **kwargs)
        with _producer_span(type) as span:
            if kwargs.get("traceparent") is None:
                kwargs["traceparent"] = traceparent_of(span)
            ref = fn(target, type, payload, **kwargs)
            span.set_attribute("messaging.message.id", str(ref.id))
            return ref

    return wrapper  # type: ignore[return-value]


# -- relay ------------------------------------------------------------------------------------


def claimed(batch: Sequence[_Claimed]) -> None:
    """A claimed batch: each event's wait in the outbox as a span of its trace (from its
    ``created_at`` to now), and one claim span linked to those traces."""
    if not batch or not active():
        return
    try:
        _claimed(batch)
    except Exception:  # a trace must never cost a batch: record nothing for this one
        log.debug("no spans for a claimed batch", exc_info=True)


def _claimed(batch: Sequence[_Claimed]) -> None:
    tracer = _tracer()
    now = time.time_ns()
    links = []
    for item in batch:
        event = item.event
        parent = context_of(event.traceparent)
        if parent is None:
            continue
        wait = tracer.start_span(
            "tether.outbox.wait",
            context=parent,
            start_time=int(event.created_at.timestamp() * 1e9),
            attributes={"messaging.message.id": str(event.id), "tether.topic": event.topic},
        )
        wait.end(end_time=now)
        links.append(Link(wait.get_span_context()))
    claim = tracer.start_span(
        "tether.relay.claim",
        kind=SpanKind.CONSUMER,
        start_time=now,
        links=links,
        attributes={"messaging.batch.message_count": len(batch)},
    )
    claim.end()


class TracedSink:
    """A sink whose publishes are spans, one per event, children of the event's trace; the
    event goes out with the publish span as its ``traceparent``, so the consumer's span is
    the publish span's child."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.name = inner.name

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if not active():
            return await self.inner.publish(events)
        try:
            spans, stamped = self._start(events)
        except Exception:  # a trace must never cost a publish: send the events untraced
            log.debug("no publish spans for sink %s", self.name, exc_info=True)
            return await self.inner.publish(events)
        try:
            outcomes = await self.inner.publish(stamped)
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.end()
            raise
        for span, outcome in zip(spans, outcomes, strict=False):
            if not outcome.ok:
                span.set_status(Status(StatusCode.ERROR, outcome.error or "failed"))
            span.end()
        return outcomes

    def _start(self, events: Sequence[Event]) -> tuple[list[Span], list[Event]]:
        tracer = _tracer()
        spans = [
            tracer.start_span(
                f"tether.publish {e.topic}",
                context=context_of(e.traceparent),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "tether",
                    "messaging.destination.name": self.name,
                    "messaging.message.id": str(e.id),
                },
            )
            for e in events
        ]
        stamped = [
            dataclasses.replace(e, traceparent=traceparent_of(s))
            for e, s in zip(events, spans, strict=True)
        ]
        return spans, stamped

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def publisher(sink: Sink) -> Sink:
    """``sink`` with publish spans while tracing is on; ``sink`` itself otherwise (the relay
    asks per publish, so a sink costs no extra call when nothing is traced)."""
    return TracedSink(sink) if active() else sink


# -- consumer ---------------------------------------------------------------------------------

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


def traced_handler(handler: H, consumer: str) -> H:
    """A consumer handler run in a span that continues the event's trace."""
    if not _INSTALLED:
        return handler

    @functools.wraps(handler)
    async def wrapper(event: Event, tx: Any) -> Any:
        if not active():
            return await handler(event, tx)
        with _tracer().start_as_current_span(
            f"tether.consume {event.type}",
            context=context_of(event.traceparent),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "tether",
                "messaging.consumer.group.name": consumer,
                "messaging.message.id": str(event.id),
            },
        ):
            return await handler(event, tx)

    return wrapper  # type: ignore[return-value]
