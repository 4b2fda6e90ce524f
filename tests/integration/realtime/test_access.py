"""Who may subscribe to what, through the SDK: the authorization matrix, and a capability
revoked in PostgreSQL ending the subscription within a second (authz's NOTIFY watcher)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.support.centrifuge_interop.sdk import client, subscribed
from tests.support.centrifuge_interop.serve import token
from tether.authz import Authz, InvalidationWatcher, Registry, SqlAuthzStore, listen_dsn_of
from tether.realtime import ChannelAccess

REGISTRY = Registry(["requirement:view", "trade:view"])
ALLOWED, DENIED, UNKNOWN = "allowed", 103, 102

MATRIX = [
    # (user, org, channel, verdict)
    ("alice", "acme", "user:alice", ALLOWED),
    ("alice", "acme", "user:bob", DENIED),
    ("alice", "acme", "org:acme", ALLOWED),
    ("alice", "acme", "org:globex", DENIED),  # cross-tenant
    ("alice", "acme", "topic:requirements", ALLOWED),  # granted in acme
    ("alice", "acme", "topic:trades", DENIED),  # no grant
    ("alice", "acme", "topic:quotes", ALLOWED),  # callback says yes
    ("alice", "acme", "topic:nosuch", UNKNOWN),
    ("alice", "acme", "orders", UNKNOWN),
    ("alice", "acme", "user:../../x", UNKNOWN),
    ("bob", "globex", "topic:requirements", DENIED),  # alice's grant is acme's, not globex's
    ("bob", "globex", "org:acme", DENIED),
    ("bob", "globex", "topic:quotes", DENIED),  # callback says no
    ("carol", None, "org:acme", DENIED),  # no org in the token
    ("carol", None, "topic:requirements", UNKNOWN),  # topics need an org
    ("carol", None, "user:carol", ALLOWED),
]


@pytest.fixture
async def authz(pg_dsn: str) -> AsyncIterator[tuple[Authz, Authz, InvalidationWatcher]]:
    """A writer (the admin side) and the gateway's own Authz with its cache and watcher."""
    writer_store = SqlAuthzStore.from_url(pg_dsn)
    writer = Authz(writer_store, REGISTRY)
    await writer.sync()
    for user in ("alice", "bob", "carol"):
        await writer.add_user(user)
    for org in ("acme", "globex"):
        await writer.add_org(org)
    await writer.grant("alice", "requirement:view", "acme")
    reader_store = SqlAuthzStore.from_url(pg_dsn)
    reader = Authz(reader_store, REGISTRY)
    assert reader.cache is not None
    watcher = InvalidationWatcher(
        reader_store, reader.cache, listen_dsn=listen_dsn_of(reader_store)
    )
    await watcher.start()
    yield writer, reader, watcher
    await watcher.stop()
    await reader_store.close()
    await writer_store.close()


def access_for(reader: Authz) -> ChannelAccess:
    return ChannelAccess(
        {
            "requirements": "requirement:view",
            "trades": "trade:view",
            "quotes": lambda identity, topic: identity.org == "acme",
        },
        has=reader.has,
    )


async def test_authorization_matrix(authz, start_gateway) -> None:
    _, reader, _ = authz
    _, url = await start_gateway(access=access_for(reader))
    failures = []
    for user, org, channel, verdict in MATRIX:
        sdk, _ = client(url, token(user, org))
        await sdk.connect()
        try:
            seen = await subscribed(sdk, channel)
            got = "allowed" if seen.subscribed else seen.unsubscribed[0].code
            if got != verdict:
                failures.append((user, org, channel, verdict, got))
        finally:
            await sdk.disconnect()
    assert failures == []


async def test_a_revoked_capability_ends_the_subscription_within_a_second(
    authz, start_gateway
) -> None:
    writer, reader, watcher = authz
    assert watcher.listening
    gateway, url = await start_gateway(access=access_for(reader))
    await writer.grant("alice", "trade:view", "acme")
    sdk, _ = client(url, token("alice", "acme"))
    await sdk.connect()
    try:
        trades = await subscribed(sdk, "topic:trades")
        requirements = await subscribed(sdk, "topic:requirements")
        assert trades.subscribed and requirements.subscribed
        await writer.revoke("alice", "trade:view", "acme")
        revoked_at = time.monotonic()
        await trades.until(lambda r: r.unsubscribed, timeout=5)
        assert time.monotonic() - revoked_at < 1.0
        assert trades.unsubscribed[0].code == 2000
        assert "revoked" in trades.unsubscribed[0].reason
        assert requirements.unsubscribed == []  # the other grant still holds
        assert gateway.stats.revoked == 1
    finally:
        await sdk.disconnect()
