"""A NATS URL's password or token never reaches the message of an unreachable broker (the
dashboard's consumer page and the logs show that message)."""

from __future__ import annotations

import socket

import pytest

from tether.consume.jetstream import _Link
from tether.core.errors import BrokerUnavailableError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("auth", ["app:s3cret@", "s3cret@"])
async def test_an_unreachable_nats_is_named_without_its_secret(auth: str) -> None:
    link = _Link(
        f"nats://{auth}127.0.0.1:{closed_port()}",
        1.0,
        {"max_reconnect_attempts": 0, "allow_reconnect": False},
    )
    with pytest.raises(BrokerUnavailableError) as caught:
        await link.open()
    assert "s3cret" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)
