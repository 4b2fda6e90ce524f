"""The client's IP address, trusting X-Forwarded-For only as far as our own proxies wrote it.

The chain is walked right to left: every hop appended by a trusted proxy is skipped, and the
first address that is not a trusted proxy is the client. A request whose direct peer is not a
trusted proxy gets its peer address, whatever X-Forwarded-For claims (it could be forged).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.types import Scope

from tether.core.errors import ConfigError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_networks(items: Iterable[str]) -> tuple[_Network, ...]:
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)
    except ValueError as exc:
        raise ConfigError(f"trusted proxy is not an IP address or CIDR network: {exc}") from exc


@dataclass(frozen=True)
class ClientIPResolver:
    """Resolve the client address from the ASGI scope through ``trusted_proxies`` (CIDRs)."""

    trusted_proxies: tuple[str, ...] = ()
    header: bytes = b"x-forwarded-for"
    _networks: tuple[_Network, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_networks", _parse_networks(self.trusted_proxies))

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else ""
        if not self._networks or not self.is_trusted(peer):
            return peer
        hops = self._forwarded_hops(scope)
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop
        # Every hop is one of ours: the leftmost is as close to the client as we can know.
        return hops[0] if hops else peer

    def _forwarded_hops(self, scope: Scope) -> list[str]:
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == self.header:
                hops.extend(_clean(part) for part in value.decode("latin-1").split(","))
        return [hop for hop in hops if hop]


def _clean(hop: str) -> str:
    hop = hop.strip()
    if hop.startswith("[") and "]" in hop:  # "[2001:db8::1]:4711"
        return hop[1 : hop.index("]")]
    if hop.count(":") == 1:  # "203.0.113.7:4711"
        return hop.split(":", 1)[0]
    return hop
