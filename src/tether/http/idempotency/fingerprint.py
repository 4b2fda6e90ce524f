"""A request fingerprint: what must match for a retry to count as the same request."""

from __future__ import annotations

import hashlib

from starlette.types import Scope


class Fingerprinter:
    """Hash method, path, query, chosen headers and body, fed chunk by chunk as they arrive."""

    def __init__(self, scope: Scope, headers: frozenset[bytes]) -> None:
        chosen = sorted(k + b": " + v for k, v in scope.get("headers", ()) if k in headers)
        # Laid out like HTTP itself: no field can hold a line break (the path is the raw,
        # percent-encoded one), so distinct requests never produce the same bytes.
        head = [scope["method"].encode(), _path(scope), scope.get("query_string", b""), *chosen]
        self._hash = hashlib.sha256(b"\n".join(head) + b"\n\n")

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        return raw
    path: str = scope.get("root_path", "") + scope["path"]
    return path.encode()


def scope_key(tenant: str, principal: str, method: str, route: str, key: str) -> str:
    """One opaque store key per (tenant, principal, method, route, key): callers never collide."""
    return hashlib.sha256(repr((tenant, principal, method, route, key)).encode()).hexdigest()
