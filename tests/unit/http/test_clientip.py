from __future__ import annotations

import pytest

from tether.core.errors import ConfigError
from tether.http.clientip import ClientIPResolver


def scope(peer: str, xff: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", xff.encode())] if xff is not None else []
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert ClientIPResolver()(scope("198.51.100.9", "1.2.3.4")) == "198.51.100.9"


def test_an_untrusted_peer_cannot_spoof_the_header() -> None:
    resolve = ClientIPResolver(("10.0.0.0/8",))
    assert resolve(scope("198.51.100.9", "1.2.3.4")) == "198.51.100.9"


def test_the_chain_is_walked_right_to_left_past_trusted_hops() -> None:
    resolve = ClientIPResolver(("10.0.0.0/8", "192.168.1.1"))
    # The client forged "1.2.3.4"; our proxies appended the real client and themselves.
    chain = "1.2.3.4, 203.0.113.7, 192.168.1.1, 10.1.1.1"
    assert resolve(scope("10.0.0.2", chain)) == "203.0.113.7"


def test_ports_brackets_and_repeated_headers() -> None:
    resolve = ClientIPResolver(("10.0.0.0/8", "2001:db8::/32"))
    s = scope("10.0.0.2")
    s["headers"] = [
        (b"x-forwarded-for", b"[2001:db9::5]:4711"),
        (b"x-forwarded-for", b"10.0.0.9:80"),
    ]
    assert resolve(s) == "2001:db9::5"
    assert resolve(scope("10.0.0.2", "203.0.113.7:9999")) == "203.0.113.7"


def test_all_hops_trusted_gives_the_leftmost_and_missing_client_is_empty() -> None:
    resolve = ClientIPResolver(("10.0.0.0/8",))
    assert resolve(scope("10.0.0.2", "10.0.0.5, 10.0.0.6")) == "10.0.0.5"
    assert resolve({"type": "http", "headers": []}) == ""


def test_bad_proxy_config_fails_loudly() -> None:
    with pytest.raises(ConfigError):
        ClientIPResolver(("not-an-ip",))
