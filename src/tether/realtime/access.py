"""Who may subscribe to what.

* ``user:<id>``: that user only.
* ``org:<id>``: members of that organization only (the token's org), so never across tenants.
* ``topic:<name>``: a configured topic only, bound to the client's own org (see
  :mod:`tether.realtime.channels`), and guarded by a capability (checked with ``has``, e.g.
  ``tether.authz.Authz.has``, in the client's org) or by a callback.

Guarded topics are checked again every ``recheck`` seconds while subscribed (the gateway's
sweep), so a revoked capability ends the subscription; with ``Authz``'s grant cache and its
``InvalidationWatcher`` a re-check is a dictionary lookup until a grant changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum

from tether.realtime.channels import Channel, Kind, check_topic
from tether.realtime.identity import Identity

CapabilityCheck = Callable[[str, str, str | None], Awaitable[bool]]
"""``has(user, capability, org)``: :meth:`tether.authz.Authz.has` fits."""
TopicGuard = Callable[[Identity, str], Awaitable[bool] | bool]
"""``guard(identity, topic)``: True to allow."""


class Verdict(Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"  # no such topic


class ChannelAccess:
    def __init__(
        self,
        topics: Mapping[str, str | TopicGuard] | None = None,
        *,
        has: CapabilityCheck | None = None,
    ) -> None:
        self.topics: dict[str, str | TopicGuard] = {}
        for name, guard in (topics or {}).items():
            check_topic(name)
            if isinstance(guard, str) and has is None:
                raise ValueError(
                    f"topic {name!r} is guarded by capability {guard!r}: pass has= "
                    "(for example Authz.has) to check it"
                )
            self.topics[name] = guard
        self.has = has

    async def check(self, identity: Identity, channel: Channel) -> Verdict:
        if channel.kind is Kind.USER:
            return _verdict(channel.name == identity.user)
        if channel.kind is Kind.ORG:
            return _verdict(identity.org is not None and channel.name == identity.org)
        guard = self.topics.get(channel.name)
        if guard is None:
            return Verdict.UNKNOWN
        if channel.org != identity.org:  # channels.parse binds topics to the client's org
            return Verdict.DENIED
        return _verdict(await self._passes(guard, identity, channel.name))

    @staticmethod
    def revocable(channel: Channel) -> bool:
        """Whether a subscription to ``channel`` can lose its right while it lasts."""
        return channel.kind is Kind.TOPIC

    async def _passes(self, guard: str | TopicGuard, identity: Identity, topic: str) -> bool:
        if isinstance(guard, str):
            assert self.has is not None  # __init__ refuses otherwise
            return bool(await self.has(identity.user, guard, identity.org))
        allowed = guard(identity, topic)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return bool(allowed)


def _verdict(allowed: bool) -> Verdict:
    return Verdict.ALLOWED if allowed else Verdict.DENIED
