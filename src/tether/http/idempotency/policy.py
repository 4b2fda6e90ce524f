"""Which requests the Idempotency-Key middleware handles, and how."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.routing import compile_path
from starlette.types import Scope

from tether.core.errors import ConfigError
from tether.http import identity


class Mode(enum.Enum):
    OFF = "off"  # pass through, the header is ignored
    OPTIONAL = "optional"  # honoured when present
    REQUIRED = "required"  # missing key -> 400


@dataclass(frozen=True)
class RouteRule:
    """``path`` is a Starlette path template (``/partners/{id}``); the first matching rule wins."""

    path: str
    mode: Mode
    methods: frozenset[str] | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", compile_path(self.path)[0])

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self._regex.match(path) is not None


Identity = Callable[[Scope], tuple[str, str]]
_CREDENTIALS = frozenset({b"authorization", b"x-api-key"})


def default_identity(scope: Scope) -> tuple[str, str]:
    """(tenant, principal) from what authentication middleware left in the scope.

    Falls back to the credential headers themselves: a caller who cannot present another
    caller's credential can never land in that caller's records. (They only ever reach a
    store hashed into the record key.)
    """
    tenant = identity.tenant_of(scope) or ""
    principal = identity.principal_of(scope)
    if principal:
        return tenant, f"user:{principal}"
    credentials = [
        name + b"=" + value for name, value in scope.get("headers", ()) if name in _CREDENTIALS
    ]
    if not credentials:
        return tenant, "anonymous"
    return tenant, "cred:" + b"\n".join(credentials).decode("latin-1")


def default_store_status(status: int) -> bool:
    """Store 2xx and 4xx (a retry would get the same answer), except the transient 4xx."""
    if status in (408, 409, 425, 429):
        return False
    return 200 <= status < 500


@dataclass(frozen=True)
class IdempotencyPolicy:
    methods: frozenset[str] = frozenset({"POST", "PUT", "PATCH"})
    default_mode: Mode = Mode.OPTIONAL
    routes: tuple[RouteRule, ...] = ()
    record_ttl: float = 24 * 3600.0
    lease_ttl: float = 60.0
    fingerprint_headers: frozenset[bytes] = frozenset({b"content-type"})
    store_status: Callable[[int], bool] = default_store_status
    # A handler that raises before answering: release the key so the client can retry (True),
    # or store a 500 problem for it, so retries get that answer until the record expires.
    retry_after_exception: bool = True
    identity: Identity = default_identity
    # Never stored nor replayed: per-connection headers, and those that describe the moment
    # of the response (rate-limit fields are computed for each response, the replay included).
    unstored_headers: frozenset[bytes] = frozenset(
        {b"set-cookie", b"date", b"server", b"ratelimit", b"ratelimit-policy", b"retry-after"}
    )
    max_body_bytes: int = 10 * 1024 * 1024
    max_response_bytes: int = 1024 * 1024
    header: bytes = b"idempotency-key"

    def __post_init__(self) -> None:
        if self.record_ttl <= 0 or self.lease_ttl <= 0:
            raise ConfigError("record_ttl and lease_ttl must be positive seconds")
        if self.lease_ttl > self.record_ttl:
            raise ConfigError("lease_ttl must not exceed record_ttl")
        if self.max_body_bytes < 0 or self.max_response_bytes < 0:
            raise ConfigError("max_body_bytes and max_response_bytes must be >= 0")
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        names = frozenset(h.lower() for h in self.fingerprint_headers)
        object.__setattr__(self, "fingerprint_headers", names)
        unstored = frozenset(h.lower() for h in self.unstored_headers)
        object.__setattr__(self, "unstored_headers", unstored)

    def mode_for(self, method: str, path: str) -> tuple[Mode, str]:
        """The mode for this request and the route name its records are scoped by."""
        if method not in self.methods:
            return Mode.OFF, path
        for rule in self.routes:
            if rule.matches(method, path):
                return rule.mode, rule.path
        return self.default_mode, path
