"""What the JetStream sink and the JetStream consumer do alike with their NATS connections."""

from __future__ import annotations

import logging

import nats.errors
from nats.aio.client import Client as NATS

from tether.core.redact import mask_url

log = logging.getLogger("tether.nats")


async def log_error(exc: Exception) -> None:
    """nats-py's ``error_cb``: it reconnects by itself, so an error is worth a warning only."""
    log.warning("NATS connection error: %r", exc)


async def close_quietly(nc: NATS) -> None:
    """Close a connection that may already be broken; closing is best effort."""
    try:
        await nc.close()
    except (TimeoutError, nats.errors.Error, OSError):  # pragma: no cover - best effort
        log.debug("error while closing NATS connection", exc_info=True)


def shown_servers(servers: str | list[str]) -> str:
    """The server URLs for a message, tokens and passwords masked."""
    return mask_url(servers if isinstance(servers, str) else ",".join(servers))
