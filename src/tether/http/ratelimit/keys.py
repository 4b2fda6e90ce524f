"""Who a request is counted against. A key function returns ``None`` when it does not apply
(no API key sent, not authenticated), and the rule is then skipped for that request."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from starlette.types import Scope

from tether.http import identity
from tether.http.clientip import ClientIPResolver

KeyFunc = Callable[[Scope], str | None]


def by_ip(resolver: ClientIPResolver | None = None) -> KeyFunc:
    """The client IP, through ``resolver``'s trusted proxies (none by default: the peer)."""
    resolve = resolver or ClientIPResolver()

    def key(scope: Scope) -> str | None:
        address = resolve(scope)
        return f"ip:{address}" if address else None

    return key


def by_api_key(header: bytes = b"x-api-key") -> KeyFunc:
    """The API key (hashed: Redis never holds a usable credential)."""

    def key(scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == header and value:
                return "key:" + hashlib.sha256(value).hexdigest()[:32]
        return None

    return key


def by_user() -> KeyFunc:
    """The authenticated principal: ``scope["user"].identity`` or ``state["principal"]``.

    Runs after authentication: put the middleware inside the auth middleware, or use the
    FastAPI dependency after the auth dependency.
    """

    def key(scope: Scope) -> str | None:
        principal = identity.principal_of(scope)
        return f"user:{principal}" if principal else None

    return key


def by_tenant() -> KeyFunc:
    def key(scope: Scope) -> str | None:
        tenant = identity.tenant_of(scope)
        return f"tenant:{tenant}" if tenant else None

    return key
