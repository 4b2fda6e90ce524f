"""The contract every idempotency store passes: memory, Redis and Postgres alike."""

from __future__ import annotations

import asyncio
import time
import uuid

from tether.http.idempotency import Begin, IdempotencyStore, Outcome, StoredResponse

RESPONSE = StoredResponse(
    201, ((b"content-type", b"application/json"), (b"x-thing", b"1")), b'{"id": 7}\x00\xff'
)


def key() -> str:
    return uuid.uuid4().hex


async def until_acquired(store: IdempotencyStore, k: str, fp: str, lease: float) -> Begin:
    """Poll until the key can be taken again (lease or record expiry); bounded, never forever."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        begin = await store.begin(k, fp, "", lease, 60)
        if begin.outcome is Outcome.ACQUIRED:
            return begin
        await asyncio.sleep(0.02)
    raise AssertionError("the key never became free")


async def test_first_begin_acquires_and_duplicate_is_in_flight(store: IdempotencyStore) -> None:
    k = key()
    first = await store.begin(k, "fp", "t", 30, 60)
    assert first.outcome is Outcome.ACQUIRED and first.token
    second = await store.begin(k, "fp", "t", 30, 60)
    assert second.outcome is Outcome.IN_FLIGHT
    assert 0 < second.retry_after <= 30


async def test_other_fingerprint_is_a_mismatch(store: IdempotencyStore) -> None:
    k = key()
    await store.begin(k, "fp", "", 30, 60)
    assert (await store.begin(k, "other", "", 30, 60)).outcome is Outcome.MISMATCH
    first = await store.begin(key(), "fp", "", 30, 60)
    assert first.outcome is Outcome.ACQUIRED


async def test_completed_record_replays_the_exact_response(store: IdempotencyStore) -> None:
    k = key()
    begin = await store.begin(k, "fp", "", 30, 60)
    assert await store.complete(k, begin.token, RESPONSE, 60)
    replay = await store.begin(k, "fp", "", 30, 60)
    assert replay.outcome is Outcome.COMPLETED
    assert replay.response == RESPONSE
    assert (await store.begin(k, "changed", "", 30, 60)).outcome is Outcome.MISMATCH


async def test_release_makes_the_key_retryable(store: IdempotencyStore) -> None:
    k = key()
    begin = await store.begin(k, "fp", "", 30, 60)
    await store.release(k, begin.token)
    assert (await store.begin(k, "fp", "", 30, 60)).outcome is Outcome.ACQUIRED


async def test_release_never_drops_a_completed_record(store: IdempotencyStore) -> None:
    k = key()
    begin = await store.begin(k, "fp", "", 30, 60)
    await store.complete(k, begin.token, RESPONSE, 60)
    await store.release(k, begin.token)
    assert (await store.begin(k, "fp", "", 30, 60)).outcome is Outcome.COMPLETED


async def test_a_stranger_token_cannot_complete_or_release(store: IdempotencyStore) -> None:
    k = key()
    await store.begin(k, "fp", "", 30, 60)
    assert not await store.complete(k, "not-the-token", RESPONSE, 60)
    await store.release(k, "not-the-token")
    assert (await store.begin(k, "fp", "", 30, 60)).outcome is Outcome.IN_FLIGHT


async def test_an_expired_lease_frees_the_key_and_fences_the_old_holder(
    store: IdempotencyStore,
) -> None:
    k = key()
    crashed = await store.begin(k, "fp", "", 0.2, 60)
    retry = await until_acquired(store, k, "fp", 30)
    assert retry.token != crashed.token
    assert not await store.complete(k, crashed.token, RESPONSE, 60)
    assert await store.complete(k, retry.token, RESPONSE, 60)


async def test_records_expire_after_their_ttl(store: IdempotencyStore) -> None:
    k = key()
    begin = await store.begin(k, "fp", "", 30, 60)
    await store.complete(k, begin.token, RESPONSE, 0.2)
    await until_acquired(store, k, "fp", 30)


async def test_concurrent_begins_acquire_exactly_once(store: IdempotencyStore) -> None:
    k = key()
    results = await asyncio.gather(*(store.begin(k, "fp", "", 30, 60) for _ in range(50)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.ACQUIRED) == 1
    assert outcomes.count(Outcome.IN_FLIGHT) == 49
