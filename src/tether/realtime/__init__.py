"""The real-time gateway: WebSocket channels fed by the outbox, with missed-message recovery.

Clients speak the Centrifuge JSON protocol (the ``centrifuge`` SDKs connect unchanged).
Start with :class:`Gateway`, a :class:`JwtVerifier` and a :class:`ChannelAccess`; share
traffic between gateways with :class:`RedisBackplane`. See ``docs/realtime.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.realtime.access import ChannelAccess, Verdict
    from tether.realtime.backplane import Backplane, BackplaneUnavailable, Position, Recovery
    from tether.realtime.channels import BadChannel, Channel, Kind
    from tether.realtime.gateway import Gateway, GatewaySettings
    from tether.realtime.identity import Identity, JwtVerifier, TokenExpired, TokenRejected
    from tether.realtime.memory import MemoryBackplane
    from tether.realtime.redis import RedisBackplane
    from tether.realtime.routing import Routes

# Exported names and their modules, imported on first use: the outbox sink needs only the
# backplane and routing, not Starlette.
_EXPORTS = {
    "ChannelAccess": "access",
    "Verdict": "access",
    "Backplane": "backplane",
    "BackplaneUnavailable": "backplane",
    "Position": "backplane",
    "Recovery": "backplane",
    "BadChannel": "channels",
    "Channel": "channels",
    "Kind": "channels",
    "Gateway": "gateway",
    "GatewaySettings": "gateway",
    "Identity": "identity",
    "JwtVerifier": "identity",
    "TokenExpired": "identity",
    "TokenRejected": "identity",
    "MemoryBackplane": "memory",
    "RedisBackplane": "redis",
    "Routes": "routing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tether.realtime' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tether.realtime.{module}"), name)


__all__ = [
    "Backplane",
    "BackplaneUnavailable",
    "BadChannel",
    "Channel",
    "ChannelAccess",
    "Gateway",
    "GatewaySettings",
    "Identity",
    "JwtVerifier",
    "Kind",
    "MemoryBackplane",
    "Position",
    "Recovery",
    "RedisBackplane",
    "Routes",
    "TokenExpired",
    "TokenRejected",
    "Verdict",
]
