"""Every spelling of an inside IPv4 address is refused; the same spellings of a public one pass."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.net import SsrfPolicy, UnsafeDestination, check_url

INSIDE = [
    ipaddress.IPv4Network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
    )
]


def spellings(address: ipaddress.IPv4Address) -> list[str]:
    n = int(address)
    a, b, c, d = address.packed
    return [
        str(address),
        str(n),  # 2130706433
        hex(n),  # 0x7f000001
        "0" + oct(n)[2:],  # 017700000001
        f"{a}.{(b << 16) | (c << 8) | d}",  # 127.1
        f"{a}.{b}.{(c << 8) | d}",
        f"0x{a:x}.{b}.{c}.{d}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"[::ffff:{address}]",
        f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
        f"[2002:{n >> 16:x}:{n & 0xFFFF:x}::1]",  # 6to4
        f"[64:ff9b::{n >> 16:x}:{n & 0xFFFF:x}]",  # NAT64
    ]


@st.composite
def inside_addresses(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(INSIDE))
    offset = draw(st.integers(0, net.num_addresses - 1))
    return net[offset]


@settings(max_examples=150, deadline=None)
@given(inside_addresses())
def test_every_spelling_of_an_inside_address_is_refused(address: ipaddress.IPv4Address) -> None:
    for spelled in spellings(address):
        with pytest.raises(UnsafeDestination):
            check_url(f"http://{spelled}:8080/hook", SsrfPolicy())


@pytest.mark.parametrize("public", ["8.8.8.8", "93.184.216.34", "1.1.1.1"])
def test_the_same_spellings_of_a_public_address_pass(public: str) -> None:
    for spelled in spellings(ipaddress.IPv4Address(public)):
        check_url(f"http://{spelled}/hook", SsrfPolicy())
