"""The official ``centrifuge`` npm SDK (5.x, under Node.js, unchanged) against the gateway:
subscribe, live publications with offsets and tags, recovery after a forced disconnect."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.centrifuge_interop.serve import token
from tether.realtime import Channel, Kind
from tether.realtime.protocol import Disconnect

HERE = Path(__file__).resolve().parents[2] / "support" / "centrifuge_interop"


class Node:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    async def until(self, check: Any, timeout: float = 15.0) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while not check(self.events):
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"node exited; events so far: {self.events}")
                self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


async def start_node(url: str, tok: str, channel: str) -> Node:
    node = shutil.which("node")
    assert node, "Node.js is needed for the npm SDK interop test (scripts/install)"
    assert (HERE / "node_modules" / "centrifuge").is_dir(), "run scripts/install (npm ci)"
    proc = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "client.mjs"),
        url,
        tok,
        channel,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=HERE,
    )
    return Node(proc)


async def test_npm_sdk_subscribes_receives_and_recovers(start_gateway) -> None:
    gateway, url = await start_gateway()
    node = await start_node(url, token("alice", "acme"), "org:acme")
    acme = Channel(Kind.ORG, "acme")
    try:
        await node.until(lambda ev: any(e["event"] == "subscribed" for e in ev))
        assert node.of("subscribed")[0]["recoverable"] is True
        for n in range(3):
            await gateway.publish(acme, b'{"n":%d}' % n, {"event_id": f"e{n}"})
        await node.until(lambda ev: len([e for e in ev if e["event"] == "publication"]) == 3)
        pubs = node.of("publication")
        assert [p["data"] for p in pubs] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert [int(p["offset"]) for p in pubs] == [1, 2, 3]
        assert pubs[0]["tags"] == {"event_id": "e0"}

        for session in list(gateway.sessions):
            session.disconnect(Disconnect.INSUFFICIENT_STATE)
        for n in range(3, 8):
            await gateway.publish(acme, b'{"n":%d}' % n)
        await node.until(lambda ev: len([e for e in ev if e["event"] == "publication"]) == 8)
        assert [p["data"]["n"] for p in node.of("publication")] == list(range(8))
        assert node.of("disconnected") == []  # it reconnected by itself
    finally:
        assert node.proc.stdin is not None
        node.proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await node.proc.wait()
        except TimeoutError:
            node.proc.kill()


async def test_npm_sdk_is_refused_another_org(start_gateway) -> None:
    _, url = await start_gateway()
    node = await start_node(url, token("alice", "acme"), "org:globex")
    try:
        await node.until(lambda ev: any(e["event"] == "unsubscribed" for e in ev))
        assert node.of("unsubscribed")[0]["code"] == 103
    finally:
        assert node.proc.stdin is not None
        node.proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await node.proc.wait()
        except TimeoutError:
            node.proc.kill()
