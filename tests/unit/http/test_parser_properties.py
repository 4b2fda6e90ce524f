"""Property tests: every parser of outside input in tether.http gives a value or its error.

The Idempotency-Key header and the X-Forwarded-For chain come from clients, the trusted-proxy
list from configuration. For any input each parser either returns a value that agrees with it
or raises the documented error type, never anything else.
"""

from __future__ import annotations

import ipaddress
import re
import string

from hypothesis import example, given
from hypothesis import strategies as st

from tether.core.errors import ConfigError
from tether.http.clientip import ClientIPResolver
from tether.http.idempotency.keys import (
    BARE_KEY_PATTERN,
    MAX_KEY_LENGTH,
    QUOTED_KEY_PATTERN,
    InvalidKeyError,
    parse_key,
)

PRINTABLE = st.text(alphabet=[chr(c) for c in range(0x20, 0x7F)], min_size=1, max_size=300)
TOKEN = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z:/=@]{1,255}", fullmatch=True)
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(str)
HOP_TEXT = st.text(alphabet=string.hexdigits + ".:[] ,%x\x00é", max_size=40)
HOP = st.one_of(
    IPV4,
    IPV6,
    IPV4.map(lambda ip: f"{ip}:4711"),
    IPV6.map(lambda ip: f"[{ip}]:4711"),
    HOP_TEXT,
)
CHAIN = st.lists(HOP, max_size=6).map(", ".join)
NETWORKS = ("10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32")


def quoted(key: str) -> bytes:
    return ('"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()


@given(st.binary(max_size=300) | PRINTABLE.map(str.encode))
@example(b'"\\')
@example(b'"' + b"k" * 256 + b'"')
def test_any_idempotency_key_is_a_key_or_invalid(raw: bytes) -> None:
    try:
        key = parse_key(raw)
    except InvalidKeyError as exc:
        message = str(exc)
        assert message  # it says what is wrong
        return
    assert 1 <= len(key) <= MAX_KEY_LENGTH
    assert all(" " <= char <= "~" for char in key)


@given(PRINTABLE.filter(lambda k: len(k) <= MAX_KEY_LENGTH))
def test_a_quoted_key_reads_back_as_written(key: str) -> None:
    assert parse_key(quoted(key)) == key


@given(TOKEN)
def test_a_bare_token_reads_back_as_written(key: str) -> None:
    assert parse_key(key.encode()) == key
    assert parse_key(quoted(key)) == key


@given(
    PRINTABLE
    | st.from_regex(BARE_KEY_PATTERN, fullmatch=True)
    | st.from_regex(QUOTED_KEY_PATTERN, fullmatch=True)
)
@example('"' + '\\"' * 255 + '"')
@example('"' + "k" * 256 + '"')
def test_the_documented_patterns_are_exactly_the_accepted_keys(raw: str) -> None:
    """The OpenAPI document describes the header with these patterns: they must not lie."""
    text = raw.strip(" \t")
    documented = any(re.fullmatch(p, text) for p in (BARE_KEY_PATTERN, QUOTED_KEY_PATTERN))
    try:
        parse_key(raw.encode())
    except InvalidKeyError:
        accepted = False
    else:
        accepted = True
    assert accepted == documented


def scope(peer: str | None, headers: list[bytes]) -> dict[str, object]:
    return {
        "type": "http",
        "client": None if peer is None else (peer, 5000),
        "headers": [(b"x-forwarded-for", value) for value in headers],
    }


@given(
    st.none() | IPV4 | IPV6 | HOP_TEXT,
    st.lists(st.binary(max_size=60) | CHAIN.map(str.encode), max_size=3),
    st.booleans(),
)
@example("10.0.0.1", [b"\xff\xfe, 10.0.0.2"], True)
def test_any_forwarded_chain_gives_an_address_it_holds(
    peer: str | None, headers: list[bytes], trusting: bool
) -> None:
    resolver = ClientIPResolver(NETWORKS if trusting else ())
    found = resolver(scope(peer, headers))
    assert isinstance(found, str)
    if peer is None or not resolver.is_trusted(peer):
        assert found == (peer or "")  # an untrusted peer is the client, whatever it claims
        return
    assert found == peer or any(found in value.decode("latin-1") for value in headers)


@given(st.lists(IPV4, min_size=1, max_size=4), IPV4)
def test_the_rightmost_untrusted_hop_is_the_client(forged: list[str], client: str) -> None:
    resolver = ClientIPResolver(NETWORKS)
    chain = ", ".join([*forged, client, "10.1.1.1"])
    found = resolver(scope("10.0.0.2", [chain.encode()]))
    if not resolver.is_trusted(client):
        assert found == client


@given(st.lists(st.text(max_size=30) | IPV4 | IPV6, max_size=4))
@example(["10.0.0.0/33"])
@example(["fe80::1%eth0"])
def test_any_trusted_proxy_list_is_accepted_or_a_config_error(items: list[str]) -> None:
    try:
        resolver = ClientIPResolver(tuple(items))
    except ConfigError as exc:
        message = str(exc)
        assert "trusted proxy" in message
        return
    for item in items:
        network = ipaddress.ip_network(item.strip(), strict=False)
        assert resolver.is_trusted(str(network.network_address))
