"""What the consumer contract needs from each adapter, and the in-memory adapter's harness.

A broker adapter adds an ``async def <broker>_harness(...)`` generator here (or in its own
module, imported by ``test_consumer_contract.py``) and lists it in ``HARNESSES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from tether.consume.memory import MemorySource
from tether.consume.port import ConsumerSource, DeadLetterBox
from tether.core.envelope import Event


@dataclass
class ConsumerHarness:
    open_source: Callable[[], Awaitable[ConsumerSource]]
    """A source for the one consumer under test; each call opens another connection to it (a
    second process of the same consumer group / durable / queue)."""
    dead_letters: Callable[[], Awaitable[DeadLetterBox]]
    publish: Callable[[Event], Awaitable[None]]
    """Puts an event on the origin the way Tether's sink for this broker writes it."""
    publish_raw: Callable[[Mapping[str, str], bytes], Awaitable[None]]
    """Puts a message with these CloudEvents attributes (possibly none) and body on the origin."""
    redelivery: float = 1.0
    """Seconds after which a message handed out and never settled is handed out again."""


async def memory_harness() -> AsyncIterator[ConsumerHarness]:
    source = MemorySource("contract", origin="memory:contract", visibility=0.5)

    async def open_source() -> ConsumerSource:
        source.closed = False
        return source

    async def dead_letters() -> DeadLetterBox:
        return source

    async def publish(event: Event) -> None:
        source.publish(event)

    async def publish_raw(attributes: Mapping[str, str], data: bytes) -> None:
        source.put(attributes, data)

    yield ConsumerHarness(open_source, dead_letters, publish, publish_raw, redelivery=0.5)
