"""Webhook endpoints as values, and the checks every outside input goes through.

An endpoint belongs to one tenant (``None``: the application's own endpoints, stored as ``''``),
receives the events whose type matches one of its filters, and is signed with its secret ring.
Everything a caller sends (URL, filters, headers, limits) is checked here, before any write,
and refused with a :class:`WebhookConfigError` naming the field and the problem.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.core.envelope import is_name
from tether.core.errors import TetherError
from tether.webhooks.signing import SecretRing

MAX_FILTERS = 100
MAX_HEADERS = 20
MAX_HEADER_VALUE = 1024
MAX_DESCRIPTION = 1000
MAX_URL = 2048
MAX_CONCURRENCY = 1000
MAX_RATE = 10_000.0


class WebhookConfigError(TetherError, ValueError):
    """An endpoint setting was refused; nothing was written."""


class Priority(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# Hop-by-hop and framing headers belong to the connection, not the message; the signature
# headers are the dispatcher's, and a custom one would let a tenant forge or shadow them.
_RESERVED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
        "content-type", "content-encoding", "expect",
    }
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")  # RFC 9110 token


def check_filters(filters: Sequence[str]) -> tuple[str, ...]:
    """``'*'`` (every type), an exact type (``OrderPlaced``) or a prefix ending in ``*``
    (``Order*``, ``orders.*``)."""
    if isinstance(filters, str) or not isinstance(filters, Sequence):
        raise WebhookConfigError("filters must be a list of event types or patterns, e.g. ['*']")
    if not filters:
        raise WebhookConfigError("filters must not be empty: use ['*'] for every event type")
    if len(filters) > MAX_FILTERS:
        raise WebhookConfigError(f"at most {MAX_FILTERS} filters, got {len(filters)}")
    for pattern in filters:
        if pattern == "*":
            continue
        stem = pattern[:-1] if isinstance(pattern, str) and pattern.endswith("*") else pattern
        if not is_name(stem):
            raise WebhookConfigError(
                f"filter {pattern!r} is invalid: use '*', an event type, or a type prefix "
                "followed by '*' (letters, digits and . _ : - /, starting with a letter or digit)"
            )
    return tuple(dict.fromkeys(filters))


def matches(filters: Sequence[str], event_type: str) -> bool:
    """The same rule the fan-out statement applies in SQL."""
    return any(
        f == event_type or (f.endswith("*") and event_type.startswith(f[:-1])) for f in filters
    )


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        raise WebhookConfigError("headers must be an object of header names to values")
    if len(headers) > MAX_HEADERS:
        raise WebhookConfigError(f"at most {MAX_HEADERS} custom headers, got {len(headers)}")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise WebhookConfigError(f"header name {name!r} is not a valid HTTP header name")
        lower = name.lower()
        if lower in _RESERVED_HEADERS or lower.startswith("webhook-"):
            raise WebhookConfigError(
                f"header {name!r} cannot be set on an endpoint: hop-by-hop, framing and "
                "webhook-* signature headers are set by the dispatcher"
            )
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
            raise WebhookConfigError(
                f"header {name!r}: the value must be a string of at most {MAX_HEADER_VALUE} chars"
            )
        if any(c in value for c in "\r\n\0"):
            raise WebhookConfigError(f"header {name!r}: the value must not contain CR, LF or NUL")
        if lower in (k.lower() for k in checked):
            raise WebhookConfigError(f"header {name!r} is given twice")
        checked[name] = value
    return checked


def check_tenant(tenant: str | None) -> str:
    """The stored form: ``''`` for no tenant."""
    if tenant is None:
        return ""
    if not is_name(tenant):
        raise WebhookConfigError(
            f"tenant {tenant!r} is invalid: use 1-255 characters from letters, digits and "
            ". _ : - / (starting with a letter or digit)"
        )
    return tenant


def check_description(text: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION:
        raise WebhookConfigError(f"description must be a string of at most {MAX_DESCRIPTION}")
    if any(ord(c) < 32 and c not in "\t\n" for c in text):
        raise WebhookConfigError("description must not contain control characters")
    return text


def check_limits(rate_limit: float | None, concurrency: int) -> None:
    if rate_limit is not None and (
        isinstance(rate_limit, bool)
        or not isinstance(rate_limit, int | float)
        or not 0 < rate_limit <= MAX_RATE
    ):
        raise WebhookConfigError(
            f"rate_limit must be requests per second in (0, {MAX_RATE:g}] or None, "
            f"got {rate_limit!r}"
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise WebhookConfigError(f"concurrency must be an integer, got {concurrency!r}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise WebhookConfigError(f"concurrency must be 1..{MAX_CONCURRENCY}, got {concurrency}")


def check_priority(priority: Priority | str) -> Priority:
    try:
        return Priority(priority)
    except ValueError:
        raise WebhookConfigError(
            f"priority {priority!r} is invalid: use high, medium or low"
        ) from None


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """What a caller chooses for an endpoint; checked on construction."""

    url: str
    filters: tuple[str, ...] = ("*",)
    description: str = ""
    enabled: bool = True
    priority: Priority = Priority.MEDIUM
    rate_limit: float | None = None
    """Requests per second at most (per dispatcher process); None: no limit."""
    concurrency: int = 10
    """Requests in flight at once at most (per dispatcher process)."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url or len(self.url) > MAX_URL:
            raise WebhookConfigError(f"url must be a non-empty string of at most {MAX_URL} chars")
        object.__setattr__(self, "filters", check_filters(self.filters))
        object.__setattr__(self, "description", check_description(self.description))
        object.__setattr__(self, "priority", check_priority(self.priority))
        object.__setattr__(self, "headers", check_headers(self.headers))
        check_limits(self.rate_limit, self.concurrency)
        if not isinstance(self.enabled, bool):
            raise WebhookConfigError(f"enabled must be true or false, got {self.enabled!r}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A stored endpoint. ``secrets`` never shows in ``repr``; :meth:`public` leaves it out."""

    id: uuid.UUID
    tenant_id: str | None
    settings: EndpointSettings
    secrets: SecretRing = field(repr=False)
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def matches(self, event_type: str) -> bool:
        return matches(self.settings.filters, event_type)

    def public(self) -> dict[str, Any]:
        """A JSON-ready view for APIs and the CLI: secrets appear as fingerprints only."""
        s = self.settings
        ring = self.secrets
        return {
            "id": str(self.id),
            "tenant": self.tenant_id,
            "url": s.url,
            "description": s.description,
            "filters": list(s.filters),
            "enabled": s.enabled,
            "disabled_reason": self.disabled_reason,
            "priority": s.priority.value,
            "rate_limit": s.rate_limit,
            "concurrency": s.concurrency,
            "headers": dict(s.headers),
            "secrets": [ring.current.fingerprint, *(p.fingerprint for p, _ in ring.previous)],
            "failing_since": None if self.failing_since is None else self.failing_since.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
