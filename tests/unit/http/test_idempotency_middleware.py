"""Idempotency-Key middleware behaviour, on the in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message

from tests.unit.http.idem_app import Calls, build
from tether.http.idempotency import (
    IdempotencyMiddleware,
    IdempotencyPolicy,
    MemoryIdempotencyStore,
)

URL = "http://test"


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def client(calls: Calls) -> AsyncIterator[httpx.AsyncClient]:
    app = build(MemoryIdempotencyStore(), calls)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=URL) as c:
        yield c


def key(k: str) -> dict[str, str]:
    return {"Idempotency-Key": k}


async def test_without_a_key_every_request_runs(client: httpx.AsyncClient, calls: Calls) -> None:
    for _ in range(2):
        assert (await client.post("/items", content=b"x")).status_code == 201
    assert calls.count == 2


async def test_completed_request_is_replayed_exactly(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    first = await client.post("/items", content=b"hello", headers=key('"k-1"'))
    again = await client.post("/items", content=b"hello", headers=key("k-1"))
    assert calls.count == 1
    assert again.status_code == first.status_code == 201
    assert again.content == first.content
    assert again.headers["x-made"] == "yes"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


async def test_reuse_with_another_body_is_422(client: httpx.AsyncClient, calls: Calls) -> None:
    await client.post("/items", content=b"one", headers=key("k"))
    response = await client.post("/items", content=b"two", headers=key("k"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 422
    assert calls.count == 1


async def test_other_method_or_route_is_another_record(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    await client.post("/items", content=b"x", headers=key("k"))
    await client.put("/items", content=b"x", headers=key("k"))
    await client.post("/payments", content=b"x", headers=key("k"))
    assert calls.count == 3


async def test_duplicate_while_in_flight_is_409_with_retry_after(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    calls.gate = asyncio.Event()
    first = asyncio.create_task(client.post("/items", content=b"x", headers=key("k")))
    async with asyncio.timeout(5):
        while calls.count == 0:
            await asyncio.sleep(0.001)
    second = await client.post("/items", content=b"x", headers=key("k"))
    assert second.status_code == 409
    assert int(second.headers["retry-after"]) >= 1
    assert second.json()["type"].endswith("idempotency-in-flight")
    calls.gate.set()
    assert (await first).status_code == 201


async def test_required_route_without_key_is_400(client: httpx.AsyncClient, calls: Calls) -> None:
    response = await client.post("/payments", content=b"x")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert calls.count == 0


@pytest.mark.parametrize("bad", ["k" * 256, '"unterminated', "has space", ""])
async def test_malformed_or_oversized_key_is_400(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.post("/items", content=b"x", headers=key(bad))
    assert response.status_code == 400
    assert response.json()["title"] == "Bad Idempotency-Key"


async def test_two_key_headers_are_400(client: httpx.AsyncClient) -> None:
    headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    assert (await client.post("/items", content=b"x", headers=headers)).status_code == 400


async def test_off_routes_and_safe_methods_ignore_the_key(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    for _ in range(2):
        await client.post("/webhooks", content=b"x", headers=key("k"))
        await client.get("/items", headers=key("k"))
    assert calls.count == 4


async def test_handler_exception_leaves_the_key_retryable(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    for _ in range(2):
        assert (await client.post("/boom", content=b"x", headers=key("k"))).status_code == 500
    assert calls.count == 2


async def test_policy_can_record_a_failure_instead_of_allowing_a_retry(calls: Calls) -> None:
    policy = IdempotencyPolicy(retry_after_exception=False)
    app = build(MemoryIdempotencyStore(), calls, policy)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=URL) as c:
        first = await c.post("/boom", content=b"x", headers=key("k"))
        again = await c.post("/boom", content=b"x", headers=key("k"))
    assert first.status_code == again.status_code == 500
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the 500 Starlette's error middleware sent
    assert calls.count == 1


async def test_a_raw_app_that_raises_before_answering_gets_a_stored_problem() -> None:
    async def crash(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("boom")

    store = MemoryIdempotencyStore()
    mw = IdempotencyMiddleware(crash, store, IdempotencyPolicy(retry_after_exception=False))
    transport = httpx.ASGITransport(app=mw, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=URL) as c:
        await c.post("/x", content=b"x", headers=key("k"))
        again = await c.post("/x", content=b"x", headers=key("k"))
    assert again.status_code == 500
    assert again.headers["content-type"] == "application/problem+json"
    assert again.headers["idempotent-replayed"] == "true"


async def test_status_policy_decides_what_is_stored(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    for code, stored in [(200, True), (404, True), (429, False), (503, False)]:
        before = calls.count
        for _ in range(2):
            await client.post(f"/status/{code}", content=b"x", headers=key(f"k{code}"))
        assert calls.count - before == (1 if stored else 2), code


async def test_tenants_never_see_each_others_responses(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    a = await client.post("/items", content=b"same", headers={**key("k"), "x-tenant": "A"})
    b = await client.post("/items", content=b"same", headers={**key("k"), "x-tenant": "B"})
    assert calls.count == 2
    assert "idempotent-replayed" not in b.headers
    assert a.json()["n"] == 1 and b.json()["n"] == 2


async def test_principals_never_see_each_others_responses(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    alice = {**key("k"), "authorization": "Bearer alice"}
    mallory = {**key("k"), "authorization": "Bearer mallory"}
    await client.post("/items", content=b"x", headers=alice)
    response = await client.post("/items", content=b"x", headers=mallory)
    assert calls.count == 2 and "idempotent-replayed" not in response.headers
    assert (await client.post("/items", content=b"x", headers=alice)).headers[
        "idempotent-replayed"
    ] == "true"


async def test_body_over_the_buffer_limit_is_413(client: httpx.AsyncClient, calls: Calls) -> None:
    response = await client.post("/items", content=b"x" * 2000, headers=key("k"))
    assert response.status_code == 413 and calls.count == 0


async def test_500_concurrent_duplicates_execute_once(calls: Calls) -> None:
    calls.delay = 0.05
    app = build(MemoryIdempotencyStore(), calls)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=URL) as c:
        responses = await asyncio.gather(
            *(c.post("/items", content=b"pay", headers=key("once")) for _ in range(500))
        )
    statuses = [r.status_code for r in responses]
    assert calls.count == 1
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1


async def raw_call(
    app: object, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    """Drive the ASGI app by hand, sending the body in several chunks."""
    incoming: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/stream",
        "raw_path": b"/stream",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": None,
    }
    await app(scope, receive, send)  # type: ignore[operator]
    return sent


async def test_streamed_request_reaches_the_handler_chunk_by_chunk(calls: Calls) -> None:
    app = build(MemoryIdempotencyStore(), calls)
    chunks = [b"part-1;", b"part-2;", b"part-3"]
    sent = await raw_call(app, chunks, [(b"idempotency-key", b"s")])
    assert sent[0]["status"] == 200
    assert calls.chunks == [[*chunks, b""]] or calls.chunks == [chunks]
    replay = await raw_call(app, chunks, [(b"idempotency-key", b"s")])
    assert (b"idempotent-replayed", b"true") in replay[0]["headers"]
    assert calls.count == 1


def test_policy_validation() -> None:
    from tether.core.errors import ConfigError

    with pytest.raises(ConfigError):
        IdempotencyPolicy(lease_ttl=0)
    with pytest.raises(ConfigError):
        IdempotencyPolicy(lease_ttl=100, record_ttl=10)


async def test_memory_store_purges_expired_records() -> None:
    from tether.http.idempotency import StoredResponse

    now = [0.0]
    store = MemoryIdempotencyStore(clock=lambda: now[0])
    begin = await store.begin("a", "fp", "", 10, 100)
    await store.complete("a", begin.token, StoredResponse(200, (), b""), 100)
    await store.begin("b", "fp", "", 10, 100)
    now[0] = 50.0
    assert store.purge_expired() == 1  # "b" was in flight and its lease ran out
    now[0] = 150.0
    assert store.purge_expired() == 1
