"""Gateways on loopback over a Redis backplane with a key prefix of their own per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.support.centrifuge_interop.serve import SECRET, serving
from tether.realtime import ChannelAccess, Gateway, GatewaySettings, JwtVerifier, RedisBackplane

Start = Callable[..., Any]


@pytest.fixture
def prefix() -> str:
    return f"tether:rt-test:{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def start_gateway(redis_url: str, prefix: str) -> AsyncIterator[Start]:
    """``await start_gateway(access=..., history_size=..., **settings)`` -> (gateway, url)."""
    async with AsyncExitStack() as stack:

        async def start(
            access: ChannelAccess | None = None, history_size: int = 100, **settings: Any
        ) -> tuple[Gateway, str]:
            backplane = RedisBackplane(redis_url, prefix=prefix, history_size=history_size)
            gateway = Gateway(
                JwtVerifier(SECRET),
                access=access or ChannelAccess({"requirements": lambda identity, topic: True}),
                backplane=backplane,
                settings=GatewaySettings(**settings),
            )
            url = await stack.enter_async_context(serving(gateway))
            return gateway, url

        yield start
