"""Who the caller is, as authentication middleware left it in the ASGI scope."""

from __future__ import annotations

from starlette.types import Scope


def principal_of(scope: Scope) -> str | None:
    """``scope["state"]["principal"]``, else an authenticated ``scope["user"]``'s identity."""
    state = scope.get("state") or {}
    principal = state.get("principal")
    if principal:
        return str(principal)
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        identity = user.identity
    except NotImplementedError:  # Starlette's BaseUser leaves identity to subclasses
        identity = getattr(user, "display_name", None)
    return str(identity) if identity else None


def tenant_of(scope: Scope) -> str | None:
    tenant = (scope.get("state") or {}).get("tenant_id")
    return str(tenant) if tenant else None
