"""Outgoing HTTP that cannot be pointed at the inside: the SSRF policy and a pinned client."""

from tether.net.client import TotalTimeout, checked_client, read_bounded, safe_client
from tether.net.ssrf import SsrfPolicy, UnsafeDestination, check_url

__all__ = [
    "SsrfPolicy",
    "TotalTimeout",
    "UnsafeDestination",
    "check_url",
    "checked_client",
    "read_bounded",
    "safe_client",
]
