"""The journal keeps a success counted as held while its completion is in flight, so the
dispatcher's heartbeat renews that lease until the completion returns."""

from __future__ import annotations

import asyncio
from typing import Any

from tether.webhooks.journal import Journal


class SlowEngine:
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def complete_many(self, done: list[Any]) -> list[Any]:
        self.entered.set()
        await self.release.wait()
        return []


async def test_a_success_being_completed_is_still_pending() -> None:
    engine = SlowEngine()
    journal = Journal(pool=None, engine=engine)  # type: ignore[arg-type]
    claimed: Any = object()
    journal._done.append(claimed)  # as succeeded() queues it, without a delivery log row
    flushing = asyncio.create_task(journal.flush())
    await engine.entered.wait()
    assert journal.pending() == [claimed]  # the heartbeat still renews it
    engine.release.set()
    await flushing
    assert journal.pending() == []
