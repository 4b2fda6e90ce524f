"""Reading circuits from outside the guards that use them, and resetting one.

Run: ``.venv/bin/python examples/guard_circuit_view.py`` (no services: the in-process store;
``RedisBreakerStore`` answers the same calls for circuits shared through Redis).
"""

from __future__ import annotations

import asyncio

from tether.guard import BreakerPolicy, MemoryBreakerStore, view_of


async def main() -> None:
    store = MemoryBreakerStore()
    policy = BreakerPolicy(failure_threshold=2, window_s=60, open_s=30)
    for _ in range(2):
        await store.failure("ai-scorer", policy, now=1_000.0)
    records = await store.records(["ai-scorer", "ledger"])  # one read; changes nothing
    view = view_of(records["ai-scorer"], policy, now=1_010.0)
    assert (view.state, view.open_until) == ("open", 1_030.0)
    assert view_of(records["ledger"], policy, now=1_010.0).state == "closed"  # none stored
    assert await store.reset("ai-scorer")  # closed, no failures counted

    print("ai-scorer at 1010:", view.state, "until", view.open_until)
    print("ai-scorer at 1040:", view_of(records["ai-scorer"], policy, now=1_040.0).state)
    print("after reset:", (await store.records(["ai-scorer"]))["ai-scorer"])


if __name__ == "__main__":
    asyncio.run(main())
