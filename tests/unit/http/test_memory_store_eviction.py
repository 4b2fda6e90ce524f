"""The in-memory idempotency store evicts expired records by itself."""

from __future__ import annotations

from tether.http.idempotency.stores.memory import MemoryIdempotencyStore


async def test_expired_records_are_evicted_without_a_manual_purge() -> None:
    now = [0.0]
    store = MemoryIdempotencyStore(clock=lambda: now[0])
    for n in range(store.SWEEP_EVERY - 1):
        await store.begin(f"k{n}", "fp", "t", lease_ttl=1.0, record_ttl=10.0)
    now[0] = 5.0  # every lease above has expired
    await store.begin("last", "fp", "t", lease_ttl=1.0, record_ttl=10.0)
    assert len(store._records) == 1
