"""Endpoints on PostgreSQL (asyncpg): create, read, change, rotate secrets, disable, delete.

Every call names the tenant, and every statement filters on it, so one tenant never reads or
changes another's endpoint: a foreign id answers "not found", exactly like a missing one.
Secrets are stored through a :class:`SecretBox` (encrypted when ``TETHER_SECRET_KEY`` is set).
URLs are checked against the SSRF policy at registration; the dispatcher checks again at
connect time, since DNS may change in between.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from tether.core import jsonutil
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import NotFoundError
from tether.store.sqlfile import queries
from tether.webhooks.model import (
    Endpoint,
    EndpointSettings,
    WebhookConfigError,
    check_tenant,
)
from tether.webhooks.signing import DEFAULT_GRACE, SecretRing, WebhookSecret

_Q = queries("tether.webhooks", "postgres")


class Box(Protocol):
    """What :class:`tether.webhooks.secret_box.SecretBox` offers."""

    def encrypt(self, plain: str) -> str: ...

    def decrypt(self, stored: str) -> str: ...


def default_box() -> Box:
    from tether.webhooks.secret_box import SecretBox

    return SecretBox.from_env()


def check_url(url: str, policy: Any) -> None:
    """:func:`tether.net.check_url`, with its refusal as a :class:`WebhookConfigError`."""
    from tether import net

    try:
        net.check_url(url, policy)
    except ValueError as exc:  # UnsafeDestination is a ValueError naming host and reason
        raise WebhookConfigError(f"url refused: {exc}") from None


def encode_ring(ring: SecretRing, box: Box) -> str:
    return jsonutil.dumps(
        {
            "current": box.encrypt(str(ring.current)),
            "previous": [[box.encrypt(str(s)), at.isoformat()] for s, at in ring.previous],
        }
    ).decode()


def decode_ring(value: Any, box: Box) -> SecretRing:
    data = jsonutil.loads(value) if isinstance(value, str | bytes) else value
    return SecretRing(
        WebhookSecret.parse(box.decrypt(data["current"])),
        tuple(
            (WebhookSecret.parse(box.decrypt(s)), datetime.fromisoformat(at))
            for s, at in data["previous"]
        ),
    )


def endpoint_from_row(row: Any, box: Box) -> Endpoint:
    headers = row["headers"]
    settings = EndpointSettings(
        url=row["url"],
        filters=tuple(row["filters"]),
        description=row["description"],
        enabled=row["enabled"],
        priority=row["priority"],
        rate_limit=row["rate_limit"],
        concurrency=row["concurrency"],
        headers=jsonutil.loads(headers) if isinstance(headers, str) else headers,
    )
    return Endpoint(
        id=row["id"],
        tenant_id=row["tenant_id"] or None,
        settings=settings,
        secrets=decode_ring(row["secrets"], box),
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class EndpointStore:
    """Tenant-scoped endpoint operations on a pool the caller owns."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        ssrf: Any = None,
        box: Box | None = None,
        clock: Clock | None = None,
    ) -> None:
        from tether import net

        self.pool = pool
        self.ssrf = ssrf if ssrf is not None else net.SsrfPolicy()
        self.box = box if box is not None else default_box()
        self.clock = clock or SYSTEM_CLOCK

    async def _fetch(self, name: str, values: dict[str, Any]) -> list[asyncpg.Record]:
        query = _Q[name]
        return list(await self.pool.fetch(query.numbered, *query.args(values)))

    def _values(
        self, endpoint_id: uuid.UUID, tenant: str, s: EndpointSettings, ring: SecretRing
    ) -> dict[str, Any]:
        return {
            "id": endpoint_id,
            "tenant_id": tenant,
            "url": s.url,
            "description": s.description,
            "filters": list(s.filters),
            "enabled": s.enabled,
            "priority": s.priority.value,
            "rate_limit": s.rate_limit,
            "concurrency": s.concurrency,
            "headers": jsonutil.dumps(dict(s.headers)).decode(),
            "secrets": encode_ring(ring, self.box),
            "now": self.clock.now(),
        }

    async def create(
        self,
        tenant: str | None,
        settings: EndpointSettings,
        *,
        secret: WebhookSecret | None = None,
    ) -> Endpoint:
        """Register an endpoint; its first secret is ``secret`` or a new one (read it once
        from ``endpoint.secrets.current`` to hand it to the receiver)."""
        stored_tenant = check_tenant(tenant)
        check_url(settings.url, self.ssrf)
        endpoint_id = uuid.uuid4()
        ring = SecretRing(secret or WebhookSecret.generate())
        await self._fetch(
            "endpoint_insert", self._values(endpoint_id, stored_tenant, settings, ring)
        )
        return await self.get(tenant, endpoint_id)

    async def get(self, tenant: str | None, endpoint_id: uuid.UUID) -> Endpoint:
        rows = await self._fetch(
            "endpoint_get", {"id": _uuid(endpoint_id), "tenant_id": check_tenant(tenant)}
        )
        if not rows:
            raise NotFoundError(f"no webhook endpoint {endpoint_id} for this tenant")
        return endpoint_from_row(rows[0], self.box)

    async def get_any(self, endpoint_id: uuid.UUID) -> Endpoint | None:
        """The dispatcher's read, across tenants."""
        rows = await self._fetch("endpoint_get_any", {"id": endpoint_id})
        return endpoint_from_row(rows[0], self.box) if rows else None

    async def list(
        self, tenant: str | None, *, limit: int = 100, offset: int = 0
    ) -> list[Endpoint]:
        if not 1 <= limit <= 1000 or offset < 0:
            raise WebhookConfigError("limit must be 1..1000 and offset not negative")
        rows = await self._fetch(
            "endpoint_list",
            {"tenant_id": check_tenant(tenant), "limit": limit, "offset": offset},
        )
        return [endpoint_from_row(r, self.box) for r in rows]

    async def update(self, tenant: str | None, endpoint_id: uuid.UUID, **changes: Any) -> Endpoint:
        """Change settings by name (``url=``, ``filters=``, ``enabled=``, ...). Enabling an
        endpoint clears its disabled reason and its failing clock."""
        current = await self.get(tenant, endpoint_id)
        unknown = set(changes) - set(EndpointSettings.__dataclass_fields__)
        if unknown:
            raise WebhookConfigError(f"unknown endpoint settings: {', '.join(sorted(unknown))}")
        if "filters" in changes and isinstance(changes["filters"], list):
            changes["filters"] = tuple(changes["filters"])
        settings = replace(current.settings, **changes)
        if settings.url != current.url:
            check_url(settings.url, self.ssrf)
        reenabled = settings.enabled and not current.enabled
        return await self._write(
            current,
            settings,
            current.secrets,
            disabled_reason=None if settings.enabled else current.disabled_reason or "by request",
            failing_since=None if reenabled else current.failing_since,
        )

    async def rotate_secret(
        self,
        tenant: str | None,
        endpoint_id: uuid.UUID,
        new: WebhookSecret | None = None,
        *,
        grace: timedelta = DEFAULT_GRACE,
    ) -> Endpoint:
        """Sign with ``new`` (or a fresh secret) from now on, and with the old one too for
        ``grace``, so receivers can switch without losing a delivery."""
        current = await self.get(tenant, endpoint_id)
        ring = current.secrets.rotate(new or WebhookSecret.generate(), grace, self.clock.now())
        return await self._write(
            current, current.settings, ring, current.disabled_reason, current.failing_since
        )

    async def _write(
        self,
        current: Endpoint,
        settings: EndpointSettings,
        ring: SecretRing,
        disabled_reason: str | None,
        failing_since: datetime | None,
    ) -> Endpoint:
        values = self._values(current.id, check_tenant(current.tenant_id), settings, ring)
        values.pop("created_at", None)
        values["disabled_reason"] = disabled_reason
        values["failing_since"] = failing_since
        rows = await self._fetch("endpoint_update", values)
        if not rows:
            raise NotFoundError(f"no webhook endpoint {current.id} for this tenant")
        return endpoint_from_row(rows[0], self.box)

    async def delete(self, tenant: str | None, endpoint_id: uuid.UUID) -> None:
        """Delete the endpoint, its deliveries and its attempt log."""
        values = {"id": _uuid(endpoint_id), "tenant_id": check_tenant(tenant)}
        async with self.pool.acquire() as conn, conn.transaction():
            query = _Q["endpoint_delete"]
            status = await conn.execute(query.numbered, *query.args(values))
            if status.endswith(" 0"):
                raise NotFoundError(f"no webhook endpoint {endpoint_id} for this tenant")
            query = _Q["attempts_delete_endpoint"]
            await conn.execute(query.numbered, *query.args(values))


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(f"no webhook endpoint {value!r}: not an endpoint id") from None
