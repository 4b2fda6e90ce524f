"""A request fingerprint: what must match for a retry to count as the same request."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from starlette.types import Scope


class Fingerprinter:
    """Hash method, path, query, chosen headers and body, fed chunk by chunk as they arrive."""

    def __init__(self, scope: Scope, headers: Iterable[bytes]) -> None:
        wanted = frozenset(headers)
        chosen = sorted((k, v) for k, v in scope.get("headers", ()) if k in wanted)
        # The repr of a tuple is unambiguous (("ab", "c") never reads as ("a", "bc")) and is
        # built in C: one call instead of one per field on the hot path.
        head = (scope["method"], _path(scope), scope.get("query_string", b""), chosen)
        self._hash = hashlib.sha256(repr(head).encode())

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _path(scope: Scope) -> str:
    path: str = scope.get("root_path", "") + scope["path"]
    return path


def scope_key(tenant: str, principal: str, method: str, route: str, key: str) -> str:
    """One opaque store key per (tenant, principal, method, route, key): callers never collide."""
    return hashlib.sha256(repr((tenant, principal, method, route, key)).encode()).hexdigest()
