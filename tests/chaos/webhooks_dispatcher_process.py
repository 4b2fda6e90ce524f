"""A webhook dispatcher process for the chaos test.

``python -m tests.chaos.webhooks_dispatcher_process DSN ALLOW`` (the secret key in
``TETHER_SECRET_KEY``): a :class:`Dispatcher` with 3 s leases, renewed by its heartbeat while it
lives, so what a killed process held is claimed again at most 3 s later; prints ``dispatcher
ready`` and runs until it is killed. The timeouts are generous (6 s, longer than the lease: the
heartbeat keeps a slow request's delivery) so that on a loaded machine no request times out: a
repeat must then come from a kill alone.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import timedelta

import asyncpg

from tether.net import SsrfPolicy
from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig

CONFIG = DispatcherConfig(
    lease=timedelta(seconds=3),
    connect_timeout=6.0,
    total_timeout=6.0,
    max_in_flight=32,
    breaker=None,  # a receiver slowed by the test's own load must not open it for 30 s
)


async def main(dsn: str, allow: str) -> None:
    # Warnings (a lease lost, a renewal or a flush that failed) go to stderr, which the test
    # keeps, so a repeat no kill explains can be traced to its cause.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
    dispatcher = Dispatcher(pool, config=CONFIG, ssrf=SsrfPolicy(allow=[allow]))
    print("dispatcher ready", flush=True)
    await dispatcher.run(asyncio.Event())


if __name__ == "__main__":
    try:
        import uvloop  # the "fast" extra, as a deployment would run it
    except ImportError:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    else:
        uvloop.run(main(sys.argv[1], sys.argv[2]))
