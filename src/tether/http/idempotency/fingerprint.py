"""A request fingerprint: what must match for a retry to count as the same request."""

from __future__ import annotations

import hashlib

from starlette.types import Scope


def fingerprint(scope: Scope, headers: frozenset[bytes], body: bytes) -> str:
    """SHA-256 of method, raw path, query string, the chosen headers and the body."""
    chosen = sorted([k + b": " + v for k, v in scope.get("headers", ()) if k in headers])
    # Laid out like HTTP itself: no field can hold a line break (the path is the raw,
    # percent-encoded one), so distinct requests never produce the same bytes.
    head = b"\n".join(
        [scope["method"].encode(), _path(scope), scope.get("query_string", b""), *chosen]
    )
    return hashlib.sha256(head + b"\n\n" + body).hexdigest()


def _path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        return raw
    path: str = scope.get("root_path", "") + scope["path"]
    return path.encode()


def scope_key(tenant: str, principal: str, method: str, route: str, key: str) -> str:
    """One opaque store key per (tenant, principal, method, route, key): callers never collide."""
    return hashlib.sha256(repr((tenant, principal, method, route, key)).encode()).hexdigest()
