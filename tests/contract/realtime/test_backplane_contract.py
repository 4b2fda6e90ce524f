"""The backplane contract (tether.realtime.backplane), run against every adapter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tether.realtime import MemoryBackplane, Position, RedisBackplane
from tether.realtime.backplane import Backplane, Delivery


@pytest.fixture(params=["memory", "redis"])
async def backplane(request: pytest.FixtureRequest) -> AsyncIterator[Backplane]:
    if request.param == "memory":
        bp: Backplane = MemoryBackplane(history_size=5)
    else:
        url = request.getfixturevalue("redis_url")
        bp = RedisBackplane(
            url, prefix=f"tether:rt-contract:{uuid.uuid4().hex[:8]}", history_size=5
        )
    yield bp
    await bp.close()


async def test_offsets_grow_and_deliveries_arrive_in_order(backplane) -> None:
    seen: list[Delivery] = []
    await backplane.start(seen.append, lambda: None)
    start = await backplane.position("org:a")
    assert start.offset == 0 and start.epoch
    positions = [await backplane.publish("org:a", b'{"data":%d}' % n) for n in range(3)]
    assert [p.offset for p in positions] == [1, 2, 3]
    assert {p.epoch for p in positions} == {start.epoch}
    other = await backplane.publish_many([("org:b", b'{"data":1}'), ("org:a", b'{"data":3}')])
    assert [p.offset for p in other] == [1, 4]
    for _ in range(200):
        if len(seen) >= 5:
            break
        await asyncio.sleep(0.01)
    mine = [d for d in seen if d.key == "org:a"]
    assert [d.offset for d in mine] == [1, 2, 3, 4]
    assert mine[0].body == b'{"data":0}'


async def test_recovery_is_whole_or_refused(backplane) -> None:
    top = await backplane.position("org:a")
    for n in range(4):
        await backplane.publish("org:a", b'{"data":%d}' % n)
    whole = await backplane.recover("org:a", Position(top.epoch, 1))
    assert whole.recovered and [o for o, _ in whole.publications] == [2, 3, 4]
    assert whole.position.offset == 4
    nothing = await backplane.recover("org:a", Position(top.epoch, 4))
    assert nothing.recovered and nothing.publications == []
    for n in range(4, 10):  # history keeps 5: offsets 6..10
        await backplane.publish("org:a", b'{"data":%d}' % n)
    trimmed = await backplane.recover("org:a", Position(top.epoch, 3))
    assert not trimmed.recovered and trimmed.publications == []
    assert trimmed.position.offset == 10
    edge = await backplane.recover("org:a", Position(top.epoch, 5))
    assert edge.recovered and [o for o, _ in edge.publications] == [6, 7, 8, 9, 10]
    assert not (await backplane.recover("org:a", Position("other-epoch", 9))).recovered
    assert not (await backplane.recover("org:a", Position(top.epoch, 11))).recovered
