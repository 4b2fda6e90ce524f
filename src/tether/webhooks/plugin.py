"""The ``webhooks`` sink as a registry plugin (entry point ``tether.sinks: webhooks``).

Under a PostgreSQL relay the sink writes in the relay's own transaction and needs no
connection of its own; ``dsn`` is only for relays that cannot lend theirs.
"""

from __future__ import annotations

from tether.sinks.base import Sink
from tether.sinks.registry import SinkPlugin, SinkSettings, hint
from tether.webhooks.sink import DEFAULT_MAX_PAYLOAD_BYTES, WebhooksSink


class WebhooksSettings(SinkSettings):
    enabled: bool = hint("true or false", default=False)
    dsn: str | None = hint(
        "a postgresql:// DSN (only for relays without a PostgreSQL transaction)",
        default=None,
        pattern=r"^postgres(ql)?://.+",
    )
    max_payload_bytes: int = hint(
        "bytes, 1..10485760", default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1, le=10 * 1024 * 1024
    )


async def _open(settings: WebhooksSettings) -> Sink:
    pool = None
    if settings.dsn is not None:
        import asyncpg

        pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=2)
    return WebhooksSink(pool, max_payload_bytes=settings.max_payload_bytes, owns_pool=True)


WEBHOOKS: SinkPlugin[WebhooksSettings] = SinkPlugin(
    name="webhooks",
    settings=WebhooksSettings,
    open=_open,
    enabled=lambda s: s.enabled,
    enable_hint="set [sinks.webhooks] enabled = true",
)
