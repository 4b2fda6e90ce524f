"""Sink checks: each configured sink opens (reachable, its stream or exchange in place), and an
end-to-end probe event goes through the outbox and a running relay to every sink it is routed to.

The probe is a real event (type ``tether.doctor.probe``, topic ``tether.doctor`` unless told
otherwise) written with ``max_attempts=1``, so a failure dead-letters it at once instead of
retrying; whatever is left of it (its outbox row, its message on NATS) is removed afterwards.
Consumers subscribed to every topic see it pass: they should ignore types they do not know.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tether.config import Settings
from tether.core.envelope import Event
from tether.ops.doctor import seen
from tether.ops.doctor.check import Result, fail, ok, skip
from tether.outbox.routing import Router
from tether.sinks import registry

PROBE_TYPE = "tether.doctor.probe"
PROBE_TOPIC = "tether.doctor"

# run(query_name, *args) -> rows, on the doctor's database connection
Fetch = Callable[..., Awaitable[list[Any]]]
Write = Callable[[str, dict[str, Any]], Awaitable[Event]]


async def reachable(cfg: Settings, name: str, timeout: float) -> Result:
    label = f"sink {name}"
    section = cfg.sinks.section(name)
    try:
        async with asyncio.timeout(timeout):
            sink = await registry.get(name).open_sink(section)
    except TimeoutError:
        return fail(label, f"no answer within {timeout:g}s", _fix(name, section))
    except Exception as exc:  # any failure to open is this check's finding, not a crash
        return fail(label, f"{type(exc).__name__}: {exc}", _fix(name, section))
    await sink.close()
    return ok(label, seen.describe(name, section))


def _fix(name: str, section: Any) -> str:
    url = getattr(section, "url", None)
    where = f" at {seen.masked(url)}" if url else ""
    return (
        f"start the {name} broker{where}, or correct [sinks.{name}] / TETHER_SINKS_{name.upper()}_*"
    )


@dataclass(frozen=True, slots=True)
class Probe:
    topic: str = PROBE_TOPIC
    timeout: float = 15.0


def targets(cfg: Settings, topic: str) -> frozenset[str]:
    enabled = cfg.sinks.enabled()
    router = (
        Router.from_mapping(cfg.routes, enabled) if cfg.routes else Router.everything_to(enabled)
    )
    return router.sinks_for_kind(topic, PROBE_TYPE)


async def end_to_end(
    cfg: Settings, probe: Probe, write: Write, state: Fetch, remove: Fetch
) -> Result:
    name = "end-to-end event"
    if not cfg.sinks.enabled():
        return skip(name, "no sink configured")
    routed = targets(cfg, probe.topic)
    if not routed:
        return fail(
            name,
            f"no route sends topic {probe.topic!r} to any sink",
            f'add a route for it (routes: "{probe.topic}" = ["<sink>"]) or pass --probe-topic',
        )
    readers = await seen.open_readers(cfg, routed)
    try:
        payload = {"host": socket.gethostname(), "at": time.time()}
        event = await write(PROBE_TYPE, {"payload": payload, "topic": probe.topic})
        try:
            outcome = await _wait_relayed(event, state, probe.timeout)
            if outcome is not None:
                return outcome
            return await _seen(name, event, routed, readers, probe.timeout)
        finally:
            await remove(event)
            for reader in readers.values():
                await reader.remove(event)
    finally:
        for reader in readers.values():
            await reader.close()


async def _wait_relayed(event: Event, state: Fetch, timeout: float) -> Result | None:
    """None once published (row gone or done); a failure result otherwise."""
    name = "end-to-end event"
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        rows = await state(event)
        if not rows or rows[0]["state"] == "done":
            return None
        if rows[0]["state"] == "dead":
            return fail(
                name,
                f"the relay could not publish it: {rows[0]['last_error']}",
                "fix the sink named in the error (see its check above), then run the doctor again",
            )
        if time.monotonic() > deadline:
            return fail(
                name,
                f"written, but no relay published it within {timeout:g}s",
                "start `tether relay` against this database (see the relay heartbeat check)",
            )
        await asyncio.sleep(min(0.05, max(0.0, time.monotonic() - started) / 10 + 0.01))


async def _seen(
    name: str, event: Event, routed: frozenset[str], readers: dict[str, seen.Reader], timeout: float
) -> Result:
    missing = []
    for sink, reader in readers.items():
        if not await reader.find(event, timeout):
            missing.append(sink)
    if missing:
        return fail(
            name,
            f"the relay published it but it is not on {', '.join(missing)}",
            "check where the sink publishes (stream, subject prefix) and the stream's retention",
        )
    checked = ", ".join(
        f"seen on {s}" if s in readers else f"acknowledged by {s}" for s in sorted(routed)
    )
    return ok(name, f"written, relayed and {checked}")
