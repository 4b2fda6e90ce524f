"""A request fingerprint: what must match for a retry to count as the same request."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from starlette.types import Scope


class Fingerprinter:
    """Hash method, path, query, chosen headers and body, fed chunk by chunk as they arrive."""

    def __init__(self, scope: Scope, headers: Iterable[bytes]) -> None:
        self._hash = hashlib.sha256()
        for part in (scope["method"].encode(), _path(scope), scope.get("query_string", b"")):
            self._field(part)
        wanted = set(headers)
        chosen = sorted((k, v) for k, v in scope.get("headers", ()) if k in wanted)
        for name, value in chosen:
            self._field(name + b":" + value)

    def _field(self, value: bytes) -> None:
        # Length-prefixed, so ("ab", "c") and ("a", "bc") never hash alike.
        self._hash.update(len(value).to_bytes(8, "big"))
        self._hash.update(value)

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _path(scope: Scope) -> bytes:
    path: str = scope.get("root_path", "") + scope["path"]
    return path.encode()


def scope_key(tenant: str, principal: str, method: str, route: str, key: str) -> str:
    """One opaque store key per (tenant, principal, method, route, key): callers never collide."""
    digest = hashlib.sha256()
    for part in (tenant, principal, method, route, key):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()
