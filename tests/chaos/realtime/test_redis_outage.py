"""Redis goes away under a gateway with a subscribed SDK client: the client stays connected,
in-process publications still reach it (local delivery), and when Redis is back the client
is told to resubscribe and recovers; this Redis keeps no data across a restart, so the epoch
changed and the answer is an explicit recovered=false, never a silent partial replay."""

from __future__ import annotations

import pytest

from tests.support import chaos
from tests.support.centrifuge_interop.sdk import client, subscribed
from tests.support.centrifuge_interop.serve import token
from tether.core.envelope import make_event
from tether.realtime import Channel, Kind, RedisBackplane, Routes
from tether.sinks.realtime import RealtimeSink

pytestmark = [pytest.mark.chaos, pytest.mark.redis]

ACME = Channel(Kind.ORG, "acme")


async def test_redis_outage_degrades_to_local_delivery_and_recovers(
    start_gateway,
    redis_url,
    prefix,
) -> None:
    gateway, url = await start_gateway()
    backplane = gateway.backplane
    assert isinstance(backplane, RedisBackplane)
    sdk, log = client(url, token("alice", "acme"))
    await sdk.connect()
    try:
        seen = await subscribed(sdk, "org:acme")
        await gateway.publish(ACME, b'{"n":1}')
        await seen.until(lambda r: len(r.publications) == 1)
        with chaos.guaranteed_restart("redis"):
            chaos.stop("redis")
            assert await gateway.publish(ACME, b'{"n":2}') is None  # local only
            await seen.until(lambda r: len(r.publications) == 2)
            assert seen.publications[1].offset == 0
            assert gateway.stats.local_only == 1
        # Redis is back (empty): the bus reconnects, subscribers re-sync.
        await seen.until(lambda r: len(r.subscribed) == 2, timeout=30)
        again = seen.subscribed[1]
        assert again.was_recovering and not again.recovered  # the history was lost
        sink = RealtimeSink(
            RedisBackplane(redis_url, prefix=prefix), Routes({"Placed": ["org:{tenant}"]})
        )
        try:
            event = make_event("Placed", {"n": 3}, topic="order", tenant_id="acme")
            assert (await sink.publish([event]))[0].ok
            await seen.until(lambda r: len(r.publications) == 3)
            assert seen.publications[2].data["payload"] == {"n": 3}
            assert seen.publications[2].offset == 1  # the new epoch's first
        finally:
            await sink.close()
        assert log.disconnects == []  # never dropped by the outage
    finally:
        await sdk.disconnect()
