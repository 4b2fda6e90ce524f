"""Waiting on an asyncio event with a time limit, without losing a cancellation.

``asyncio.wait_for`` on Python 3.11 returns the awaited result when a cancellation arrives just
as the wait ends, and the cancellation is lost (python/cpython#86296, fixed in 3.12): a loop
told to stop at that moment goes round again and a shutdown can hang. ``asyncio.timeout`` has
no such window, so every timed wait in Tether goes through it.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass (None: no limit); True if it was set."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
