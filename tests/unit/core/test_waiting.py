"""wait_set: set, timed out, and a cancellation that always reaches the waiter."""

from __future__ import annotations

import asyncio

import pytest

from tether.core.waiting import wait_set


async def test_set_before_during_and_timed_out() -> None:
    event = asyncio.Event()
    assert not await wait_set(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5)
    assert await wait_set(event, 0)  # already set: no wait at all


async def test_a_cancellation_as_the_event_is_set_is_not_lost() -> None:
    # wait_for on 3.11 could return True here and drop the cancellation: a stop never seen.
    for _ in range(200):
        event = asyncio.Event()
        waiter = asyncio.create_task(wait_set(event, 5))
        await asyncio.sleep(0)
        event.set()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
