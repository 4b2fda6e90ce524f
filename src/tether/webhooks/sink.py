"""The ``webhooks`` sink: each published event becomes one delivery per matching endpoint.

The relay hands this sink its own open transaction (``publish_in(connection, events)``, the
relay's in-transaction capability), so the deliveries are written in the transaction that
settles the outbox rows: an event is never settled without its deliveries, and a batch that
rolls back takes both back. The unique (event_id, endpoint_id) makes a re-run add nothing.
Without the relay's transaction (``publish``), the sink writes in a transaction of its own
before the relay settles, which the same unique key keeps effectively-once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from tether.core import jsonutil
from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.envelope import Event
from tether.core.errors import SinkError, SinkUnavailableError
from tether.sinks.base import OK, Outcome, SinkFeatures
from tether.store.sqlfile import queries

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
_FAN_OUT = queries("tether.webhooks", "postgres")["fan_out"]
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def request_body(event: Event) -> bytes:
    """The JSON body receivers get: ``{"id", "type", "timestamp", ["tenant",] "data"}``, the
    event's data spliced in as stored (no parse, no re-encode)."""
    head: dict[str, Any] = {
        "id": str(event.id),
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
    }
    if event.tenant_id:
        head["tenant"] = event.tenant_id
    return jsonutil.dumps(head)[:-1] + b',"data":' + event.data + b"}"


class WebhooksSink:
    name = "webhooks"
    # Deliveries are rows in PostgreSQL, unique per (event, endpoint); an over-size body is
    # refused alone.
    features = SinkFeatures(
        dedups_by_id=True, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        pool: asyncpg.Pool | None = None,
        *,
        name: str = "webhooks",
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_attempts: int | None = None,
        clock: Clock | None = None,
        owns_pool: bool = False,
    ) -> None:
        self.name = name
        self._pool = pool
        self._owns_pool = owns_pool
        self.max_payload_bytes = max_payload_bytes
        self.max_attempts = max_attempts
        self.clock = clock or SYSTEM_CLOCK
        self._closed = False

    async def publish_in(self, connection: Any, events: Sequence[Event]) -> list[Outcome]:
        """Write the deliveries of ``events`` on ``connection`` (an asyncpg connection inside
        an open transaction), under a savepoint so a failure here leaves the relay's
        transaction usable."""
        if self._closed:
            raise SinkError("webhooks sink is closed")
        outcomes: list[Outcome] = [OK] * len(events)
        ids, types, tenants, bodies = [], [], [], []
        for i, event in enumerate(events):
            body = request_body(event)
            if len(body) > self.max_payload_bytes:
                outcomes[i] = Outcome.failed(
                    f"webhook body of {len(body)} bytes is over the {self.max_payload_bytes} "
                    "byte limit",
                    retryable=False,
                )
                continue
            ids.append(event.id)
            types.append(event.type)
            tenants.append(event.tenant_id or "")
            bodies.append(body.decode())
        if not ids:
            return outcomes
        values: dict[str, object] = {
            "now": self.clock.now(),
            "max_attempts": self.max_attempts,
            "ids": ids,
            "types": types,
            "tenants": tenants,
            "bodies": bodies,
        }
        try:
            async with connection.transaction():  # a savepoint inside the relay's transaction
                await connection.execute(_FAN_OUT.numbered, *_FAN_OUT.args(values))
        except (asyncpg.InterfaceError, OSError) as exc:
            raise SinkUnavailableError(f"webhooks: PostgreSQL unreachable: {exc}") from exc
        except asyncpg.PostgresError as exc:
            error = f"webhooks fan-out failed: {type(exc).__name__}: {exc}"
            return [o if not o.ok else Outcome.failed(error) for o in outcomes]
        return outcomes

    async def publish(self, events: Sequence[Event]) -> list[Outcome]:
        if self._pool is None:
            raise SinkUnavailableError(
                "webhooks sink: no PostgreSQL relay transaction and no dsn configured; run "
                "it under a PostgreSQL relay or set [sinks.webhooks] dsn"
            )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return await self.publish_in(conn, events)
        except _DRIVER_ERRORS as exc:
            raise SinkUnavailableError(f"webhooks: PostgreSQL unreachable: {exc}") from exc

    async def close(self) -> None:
        self._closed = True
        if self._pool is not None and self._owns_pool:
            await self._pool.close()
