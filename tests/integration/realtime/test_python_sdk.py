"""centrifuge-python (the official SDK, unchanged) against gateways on a Redis backplane:
live publications, recovery across a forced disconnect, history overflow, two gateways."""

from __future__ import annotations

import asyncio

from tests.support.centrifuge_interop.sdk import client, subscribed
from tests.support.centrifuge_interop.serve import token
from tether.core.envelope import make_event
from tether.realtime import Channel, Kind, RedisBackplane, Routes
from tether.realtime.protocol import Disconnect
from tether.sinks.realtime import RealtimeSink

ACME = Channel(Kind.ORG, "acme")


async def test_publications_reach_a_subscriber_with_offsets(start_gateway) -> None:
    gateway, url = await start_gateway()
    sdk, _ = client(url, token("alice", "acme"))
    await sdk.connect()
    try:
        seen = await subscribed(sdk, "org:acme")
        assert seen.subscribed[0].recoverable
        for n in range(3):
            await gateway.publish(ACME, b'{"n":%d}' % n, {"event_id": f"e{n}"})
        await seen.until(lambda r: len(r.publications) == 3)
        assert seen.payloads == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert [p.offset for p in seen.publications] == [1, 2, 3]
        assert seen.publications[0].tags == {"event_id": "e0"}
    finally:
        await sdk.disconnect()


async def test_forced_disconnect_recovers_every_missed_publication_in_order(start_gateway) -> None:
    gateway, url = await start_gateway()
    sdk, log = client(url, token("alice", "acme"))
    await sdk.connect()
    try:
        seen = await subscribed(sdk, "org:acme")
        await gateway.publish(ACME, b'{"n":0}')
        await seen.until(lambda r: len(r.publications) == 1)
        for session in list(gateway.sessions):
            session.disconnect(Disconnect.INSUFFICIENT_STATE)  # the SDK reconnects by itself
        for n in range(1, 21):
            await gateway.publish(ACME, b'{"n":%d}' % n)
        await seen.until(lambda r: len(r.publications) == 21)
        assert seen.payloads == [{"n": n} for n in range(21)]
        assert log.disconnects == []  # it reconnected; never gave up
        again = seen.subscribed[-1]
        if len(seen.subscribed) > 1:  # reconnected before the publications: recovered nothing
            assert again.was_recovering and again.recovered
    finally:
        await sdk.disconnect()


async def test_recovery_after_the_client_was_away(start_gateway) -> None:
    gateway, url = await start_gateway()
    sdk, _ = client(url, token("alice", "acme"))
    await sdk.connect()
    seen = await subscribed(sdk, "org:acme")
    await gateway.publish(ACME, b'{"n":0}')
    await seen.until(lambda r: len(r.publications) == 1)
    await sdk.disconnect()
    for n in range(1, 6):
        await gateway.publish(ACME, b'{"n":%d}' % n)
    await sdk.connect()
    try:
        await seen.until(lambda r: len(r.publications) == 6 and len(r.subscribed) == 2)
        assert seen.subscribed[1].was_recovering and seen.subscribed[1].recovered
        assert seen.payloads == [{"n": n} for n in range(6)]
        assert [p.offset for p in seen.publications] == list(range(1, 7))
    finally:
        await sdk.disconnect()


async def test_beyond_history_the_client_is_told_recovered_false(start_gateway) -> None:
    gateway, url = await start_gateway(history_size=5)
    sdk, _ = client(url, token("alice", "acme"))
    await sdk.connect()
    seen = await subscribed(sdk, "org:acme")
    await gateway.publish(ACME, b'{"n":0}')
    await seen.until(lambda r: len(r.publications) == 1)
    await sdk.disconnect()
    for n in range(1, 11):  # 10 missed, 5 kept
        await gateway.publish(ACME, b'{"n":%d}' % n)
    await sdk.connect()
    try:
        await seen.until(lambda r: len(r.subscribed) == 2)
        again = seen.subscribed[1]
        assert again.was_recovering and not again.recovered
        assert again.stream_position is not None and again.stream_position.offset == 11
        assert seen.payloads == [{"n": 0}]  # never a partial replay
        await gateway.publish(ACME, b'{"n":11}')
        await seen.until(lambda r: len(r.publications) == 2)
        assert seen.publications[-1].offset == 12
    finally:
        await sdk.disconnect()


async def test_two_gateways_share_channels_through_redis(start_gateway, redis_url, prefix) -> None:
    first, url_a = await start_gateway()
    _, url_b = await start_gateway()
    a, _ = client(url_a, token("alice", "acme"))
    b, _ = client(url_b, token("bob", "acme"))
    await a.connect()
    await b.connect()
    sink = RealtimeSink(
        RedisBackplane(redis_url, prefix=prefix),
        Routes({"RequirementPublished": ["org:{tenant}", "topic:requirements"]}),
    )
    try:
        seen_a = await subscribed(a, "org:acme")
        seen_b = await subscribed(b, "topic:requirements")
        event = make_event(
            "RequirementPublished", {"sku": "X1"}, topic="requirement", tenant_id="acme"
        )
        other = make_event(
            "RequirementPublished", {"sku": "Z9"}, topic="requirement", tenant_id="globex"
        )
        outcomes = await sink.publish([event, other])
        assert all(o.ok for o in outcomes)
        await first.publish(ACME, b'{"from":"gateway a"}')
        await seen_a.until(lambda r: len(r.publications) == 2)
        await seen_b.until(lambda r: len(r.publications) == 1)
        delivered = seen_b.publications[0]
        assert delivered.data["id"] == str(event.id)
        assert delivered.data["payload"] == {"sku": "X1"}  # globex's never reaches acme
        assert delivered.tags == {"event_id": str(event.id), "type": "RequirementPublished"}
        assert seen_a.payloads[1] == {"from": "gateway a"}
    finally:
        await sink.close()
        await a.disconnect()
        await b.disconnect()


async def test_epoch_change_is_not_recovered(start_gateway, redis_url, prefix) -> None:
    gateway, url = await start_gateway()
    sdk, _ = client(url, token("alice", "acme"))
    await sdk.connect()
    seen = await subscribed(sdk, "org:acme")
    await gateway.publish(ACME, b'{"n":0}')
    await seen.until(lambda r: len(r.publications) == 1)
    await sdk.disconnect()
    backplane = gateway.backplane
    assert isinstance(backplane, RedisBackplane)
    await backplane.redis.delete(*backplane._keys(ACME.key))  # history lost, as on a restart
    await gateway.publish(ACME, b'{"n":1}')
    await sdk.connect()
    try:
        await seen.until(lambda r: len(r.subscribed) == 2)
        assert not seen.subscribed[1].recovered
        assert seen.subscribed[1].stream_position.epoch != seen.subscribed[0].stream_position.epoch
    finally:
        await sdk.disconnect()
        await asyncio.sleep(0)
