"""The Redis that webhook dispatchers share their circuit breakers through, as commands open
it: ``tether webhooks run --redis-url`` decides with it, ``tether dashboard
--webhooks-redis-url`` shows and resets its circuits. Both read ``$TETHER_WEBHOOKS_REDIS_URL``
so an operator sets it once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from tether.commands import common
from tether.core import redact

REDIS_URL_ENV = "TETHER_WEBHOOKS_REDIS_URL"
REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(flag: str, url: str | None) -> None:
    """Exit 2 naming ``flag`` when ``url`` is not a Redis URL (password masked)."""
    if url is not None and urlsplit(url).scheme not in REDIS_SCHEMES:
        shown = redact.mask_secrets(url)
        common.bad_input(f"{flag} {shown!r}: use redis://, rediss:// or unix://")


@asynccontextmanager
async def shared_breaker_store(
    flag: str, redis_url: str | None, *, required: bool
) -> AsyncIterator[Any]:
    """A RedisBreakerStore on ``redis_url`` (None without one), checked reachable once.
    Unreachable at start: exit 1 when ``required`` (a dispatcher must not decide alone
    unknowingly), else a warning (a dashboard shows the error on its pages until Redis
    answers)."""
    if redis_url is None:
        yield None
        return
    try:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        from tether.guard import RedisBreakerStore
    except ImportError:
        common.bad_input(f"{flag} needs the redis extra: pip install 'tether[redis]'")
    shown = redact.mask_secrets(redis_url)
    client = aioredis.from_url(redis_url)
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            if required:
                common.fail(f"{flag} {shown}: Redis unreachable: {exc}")  # fail() masks
            common.err.print(
                f"warning: {flag} {shown}: Redis unreachable now ({exc}); pages say so until "
                "it answers",
                markup=False,
            )
        else:
            common.err.print(f"circuit breakers shared through Redis at {shown}", markup=False)
        yield RedisBreakerStore(client)
    finally:
        await client.aclose()
