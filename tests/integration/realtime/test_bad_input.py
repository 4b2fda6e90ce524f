"""Raw WebSocket clients doing what the SDKs never do: malformed and oversized frames,
unknown commands, never reading, never answering pings. Each gets an error reply or a close
code, and the gateway keeps serving everyone else."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
from collections.abc import AsyncIterator

import pytest
import websockets
from prometheus_client import REGISTRY

from tests.support.centrifuge_interop.serve import SECRET, serving, token
from tether.realtime import Channel, ChannelAccess, Gateway, GatewaySettings, JwtVerifier, Kind

LIMITS = {
    "max_message_bytes": 4096,
    "max_pending_bytes": 64 * 1024,
    "max_connections_per_user": 3,
    "max_channels": 4,
    "max_subscriptions_per_user": 5,
    "ping_interval": 1,
    "pong_timeout": 0.5,
    "connect_timeout": 1.0,
}


@pytest.fixture
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Gateway, str]]:
    settings = {**LIMITS, **getattr(request, "param", {})}
    gw = Gateway(
        JwtVerifier(SECRET),
        access=ChannelAccess({"news": lambda identity, topic: True}),
        settings=GatewaySettings(**settings),
    )
    async with serving(gw) as url:
        yield gw, url


async def raw(url: str, *frames: str) -> tuple[list[dict], int | None, str]:
    """Send ``frames``, read until the server closes or goes quiet; replies, close code, reason."""
    replies: list[dict] = []
    async with websockets.connect(url, max_size=None) as ws:
        try:
            for frame in frames:
                await ws.send(frame)
            async with asyncio.timeout(3):
                async for message in ws:
                    replies.extend(json.loads(line) for line in str(message).splitlines())
                    if len(replies) >= len(frames):
                        break
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    return replies, ws.close_code, ws.close_reason or ""


def connect(user: str = "alice", org: str | None = "acme", cid: int = 1) -> str:
    return json.dumps({"id": cid, "connect": {"token": token(user, org)}})


async def test_bad_frames_close_with_bad_request(gateway) -> None:
    _, url = gateway
    for frame in (
        "not json",
        "[1,2]",
        '{"id": -1, "connect": {}}',
        '{"id": 1, "a": {}, "b": {}}',
        '{"subscribe": {"channel": "org:acme"}}',
        '{"id": "x", "connect": {}}',
        '{"id": 1, "connect": 5}',
        "\n\n",
    ):
        _, code, reason = await raw(url, frame)
        assert code == 3501, (frame, code, reason)
    # commands before connect
    _, code, _ = await raw(url, json.dumps({"id": 1, "subscribe": {"channel": "org:acme"}}))
    assert code == 3501


async def test_oversized_message_closes_the_connection(gateway) -> None:
    _, url = gateway
    _, code, reason = await raw(
        url, connect(), json.dumps({"id": 2, "rpc": {"data": "x" * 10_000}})
    )
    assert code == 3501 and "too large" in reason


async def test_unknown_and_unsupported_commands_get_error_replies(gateway) -> None:
    _, url = gateway
    replies, code, _ = await raw(
        url,
        connect(),
        json.dumps({"id": 2, "frobnicate": {}}),
        json.dumps({"id": 3, "publish": {"channel": "org:acme", "data": {}}}),
        json.dumps({"id": 4, "subscribe": {"channel": 7}}),
        json.dumps({"id": 5, "subscribe": {"channel": "org:acme", "recover": True, "offset": "x"}}),
    )
    by_id = {r["id"]: r for r in replies}
    assert "connect" in by_id[1]
    assert by_id[2]["error"]["code"] == 104
    assert by_id[3]["error"]["code"] == 108
    assert by_id[4]["error"]["code"] == 102
    assert by_id[5]["error"]["code"] == 107
    assert code is None or code < 3500  # still connected until the client left


async def test_invalid_and_expired_tokens(gateway) -> None:
    _, url = gateway
    _, code, _ = await raw(url, json.dumps({"id": 1, "connect": {"token": "nope"}}))
    assert code == 3500
    forged = token("alice", "acme", secret="another-secret-with-at-least-32-bytes")
    _, code, _ = await raw(url, json.dumps({"id": 1, "connect": {"token": forged}}))
    assert code == 3500
    expired = token("alice", "acme", ttl=-60)
    replies, _, _ = await raw(url, json.dumps({"id": 1, "connect": {"token": expired}}))
    assert replies[0]["error"]["code"] == 109


async def test_limits(gateway) -> None:
    _, url = gateway
    subs = [
        json.dumps({"id": n, "subscribe": {"channel": c}})
        for n, c in enumerate(
            [
                "org:acme",
                "user:alice",
                "topic:news",
                "topic:news",
            ],
            2,
        )
    ]
    subs.append(json.dumps({"id": 6, "subscribe": {"channel": "org:acme"}}))
    replies, _, _ = await raw(url, connect(), *subs)
    by_id = {r["id"]: r for r in replies}
    assert by_id[5]["error"]["code"] == 105  # already subscribed
    open_ = [await websockets.connect(url) for _ in range(3)]
    try:
        for ws in open_:
            await ws.send(connect("dave"))
            await ws.recv()
        _, code, _ = await raw(url, connect("dave"))
        assert code == 3504
        for n, ws in enumerate(open_):  # 2 + 2 + 1 of dave's 5, then the user limit
            for c in ("org:acme", "user:dave")[: 2 if n < 2 else 1]:
                await ws.send(json.dumps({"id": 10, "subscribe": {"channel": c}}))
                assert "subscribe" in json.loads(await ws.recv())
        await open_[2].send(json.dumps({"id": 11, "subscribe": {"channel": "user:dave"}}))
        refused = json.loads(await open_[2].recv())
        assert refused["error"]["code"] == 106 and refused["error"]["message"] == "user limit"
    finally:
        for ws in open_:
            await ws.close()


async def test_stale_and_silent_clients_are_closed(gateway) -> None:
    gw, url = gateway
    async with websockets.connect(url) as ws:  # never connects
        async with asyncio.timeout(5):
            await ws.wait_closed()
    assert ws.close_code == 3502
    async with websockets.connect(url) as ws:  # connects, never answers pings
        await ws.send(connect())
        async with asyncio.timeout(6):
            await ws.wait_closed()
    assert ws.close_code == 3012
    assert gw.stats.no_pong == 1


def masked_text(payload: bytes) -> bytes:
    """One client-to-server WebSocket text frame (clients must mask)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x81]) + (
        bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("gateway", [{"ping_interval": 60, "close_timeout": 1.0}], indirect=True)
async def test_a_client_that_never_reads_is_cut_off_as_slow(gateway) -> None:
    gw, url = gateway
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that stops reading
    sock.connect((host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /connection/websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        async with asyncio.timeout(5):
            assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        writer.write(masked_text(connect().encode()))
        writer.write(
            masked_text(json.dumps({"id": 2, "subscribe": {"channel": "org:acme"}}).encode())
        )
        async with asyncio.timeout(5):
            while gw.hub.subscribers() == 0:
                await asyncio.sleep(0.01)
        # uvicorn's send is reachable: fan-out writes straight to the transport, and the
        # bound is measured on the transport's write buffer.
        assert all(session.transport is not None for session in gw.sessions)
        blob = b'{"pad":"' + b"x" * 30_000 + b'"}'
        slow_before = (
            REGISTRY.get_sample_value("tether_realtime_disconnects_total", {"reason": "slow"})
            or 0.0
        )
        async with asyncio.timeout(20):
            while gw.stats.slow == 0:
                await gw.publish(Channel(Kind.ORG, "acme"), blob)
                await asyncio.sleep(0)
        assert gw.stats.slow == 1
        slow_after = REGISTRY.get_sample_value(
            "tether_realtime_disconnects_total", {"reason": "slow"}
        )
        assert slow_after == slow_before + 1  # what the slow-client alert reads
        async with asyncio.timeout(15):  # the session goes, its subscription with it
            while gw.hub.subscribers():
                await asyncio.sleep(0.05)
    finally:
        writer.close()


async def test_fuzzed_frames_never_break_the_gateway(gateway) -> None:
    gw, url = gateway
    rng = random.Random(13)
    pieces = [
        '{"id":',
        "1",
        "}",
        '"connect"',
        ":",
        "{",
        '"token"',
        '"x"',
        ",",
        "null",
        "[",
        "]",
        '"subscribe"',
        '"channel"',
        '"org:acme"',
        "\n",
        "-",
        "1e309",
        '"\\u0000"',
        "true",
    ]
    for _ in range(60):
        frame = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        await raw(url, frame)
    replies, _, _ = await raw(
        url, connect(), json.dumps({"id": 2, "subscribe": {"channel": "org:acme"}})
    )
    assert "subscribe" in replies[-1]
    assert gw.stats.bad_frames > 0
