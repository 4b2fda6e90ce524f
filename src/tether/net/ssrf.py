"""Which destinations outgoing requests may reach: the SSRF policy.

A destination is refused unless every address it stands for is globally routable: no loopback,
private (RFC 1918, fc00::/7), link-local, cloud metadata, CGNAT (100.64/10), unspecified,
multicast, reserved, documentation or benchmarking ranges, and no IPv6 form that embeds one of
those IPv4 addresses (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4
``2002::/16``, NAT64 ``64:ff9b::/96``; Teredo and local-use NAT64 are refused outright).
IPv4 spelled the old ways (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``) is read the
way the C resolver reads it, so it is checked as the address it really is.

``SsrfPolicy(allow=[...])`` lets named hosts or CIDR ranges through, for tests and for private
deployments that post to their own network on purpose.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES: Final = frozenset({"http", "https"})
MAX_URL_CHARS: Final = 2048

_METADATA: Final = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "cloud metadata service (AWS IPv6)",
    ipaddress.ip_address("100.100.100.200"): "cloud metadata service (Alibaba)",
}
_V4_RANGES: Final[tuple[tuple[ipaddress.IPv4Network, str], ...]] = tuple(
    (ipaddress.IPv4Network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/8", "unspecified / 'this network' address"),
        ("127.0.0.0/8", "loopback address"),
        ("10.0.0.0/8", "private address (RFC 1918)"),
        ("172.16.0.0/12", "private address (RFC 1918)"),
        ("192.168.0.0/16", "private address (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (CGNAT, RFC 6598)"),
        ("169.254.0.0/16", "link-local address"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("224.0.0.0/4", "multicast address"),
        ("240.0.0.0/4", "reserved address"),
    )
)
_V6_RANGES: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = tuple(
    (ipaddress.IPv6Network(cidr), reason)
    for cidr, reason in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("fc00::/7", "private address (unique local)"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
        ("2001::/32", "Teredo tunnel address"),
        ("2001:db8::/32", "documentation address"),
        ("100::/64", "discard-only address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_LOOSE_IPV4: Final = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)
_HOSTNAME: Final = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
_LOCAL_NAMES: Final = ("localhost", ".localhost", ".local", ".internal", ".home.arpa")


class UnsafeDestination(ValueError):
    """An outgoing request was refused before connecting; the message names host and reason."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refused to connect to {host!r}: {reason}")
        self.host = host
        self.reason = reason


@dataclass(frozen=True, slots=True, init=False)
class SsrfPolicy:
    """What outgoing requests may reach. ``allow`` names hosts or CIDRs let through anyway."""

    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    def __init__(self, allow: Sequence[str] = ()) -> None:
        if isinstance(allow, str):
            raise TypeError("SsrfPolicy(allow=...) takes a list of hosts or CIDRs, not one string")
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allow:
            text = entry.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not _HOSTNAME.match(text):
                raise ValueError(
                    f"SSRF allow-list entry {entry!r} is neither a host name nor a CIDR"
                )
            hosts.add(text)
        object.__setattr__(self, "hosts", frozenset(hosts))
        object.__setattr__(self, "networks", tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def check_address(self, host: str, address: IPAddress) -> None:
        """UnsafeDestination unless ``address`` (one answer for ``host``) may be reached."""
        if self.host_allowed(host) or any(address in net for net in self.networks):
            return
        reason = unsafe_reason(address)
        if reason is not None:
            shown = host if host == str(address) else f"{host} ({address})"
            raise UnsafeDestination(shown, reason)

    def check_addresses(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Every answer must pass: one bad answer among good ones refuses the host."""
        for address in addresses:
            self.check_address(host, address)


def unsafe_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached, or None when it is a public address."""
    if address in _METADATA:
        return _METADATA[address]
    if isinstance(address, ipaddress.IPv4Address):
        for net, reason in _V4_RANGES:
            if address in net:
                return reason
        return None if address.is_global else "not a globally routable address"
    return _ipv6_reason(address)


def _ipv6_reason(address: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = unsafe_reason(embedded)
        return None if inner is None else f"embeds IPv4 {embedded}: {inner}"
    for net, reason in _V6_RANGES:
        if address in net:
            return reason
    if address in _IPV4_COMPATIBLE:
        return "IPv4-compatible address (deprecated)"
    return None if address.is_global else "not a globally routable address"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells (in any form the C resolver accepts), or None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if _LOOSE_IPV4.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def check_url(url: str, policy: SsrfPolicy) -> None:
    """Refuse, at registration time, a URL that cannot be a safe webhook target.

    Checks syntax, scheme (http/https), no user:password, a valid host, and a literal address
    against the policy. Host names are resolved and checked again on every connection.
    """
    if not isinstance(url, str) or not url:
        raise UnsafeDestination(str(url), "the URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise UnsafeDestination(
            url[:64] + "...", f"the URL is longer than {MAX_URL_CHARS} characters"
        )
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise UnsafeDestination(
            url, "the URL has spaces, control or non-ASCII characters (use IDNA)"
        )
    parts = _split(url)
    if parts.scheme not in SCHEMES:
        raise UnsafeDestination(url, f"scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise UnsafeDestination(url, "user:password in the URL is not allowed (use headers)")
    host = parts.hostname or ""
    if not host:
        raise UnsafeDestination(url, "the URL has no host")
    try:
        _ = parts.port
    except ValueError:
        raise UnsafeDestination(url, "the port is not a number from 0 to 65535") from None
    check_host(host, policy)


def check_host(host: str, policy: SsrfPolicy) -> None:
    """Check a host without resolving it: literal addresses and local-only names."""
    name = _normal_host(host)
    if policy.host_allowed(name):
        return
    address = literal_address(name)
    if address is not None:
        policy.check_address(host, address)
        return
    if not _HOSTNAME.match(name):
        raise UnsafeDestination(host, "not a valid host name")
    if name == "localhost" or name.endswith(_LOCAL_NAMES):
        raise UnsafeDestination(host, "a local-only host name")


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise UnsafeDestination(url, f"not a valid URL ({exc})") from None


def _normal_host(host: str) -> str:
    return host.strip().lower().strip("[]").rstrip(".")
