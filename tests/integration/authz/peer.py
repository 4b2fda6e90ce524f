"""A second app instance for the cross-process test, run as its own OS process.

It warms its cache with one allowed decision, says ``ready`` on stdout, then checks from the
cache in a loop until the decision flips to denied and prints ``denied <monotonic time>``.
CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare the two times.

usage: python -m tests.integration.authz.peer DSN listen|poll
"""

from __future__ import annotations

import asyncio
import sys
import time

from tether.authz import Authz, InvalidationWatcher, Registry, SqlAuthzStore, listen_dsn_of

REGISTRY = Registry(["trade:approve", "trade:view"])


async def main(dsn: str, mode: str) -> None:
    store = SqlAuthzStore.from_url(dsn)
    authz = Authz(store, REGISTRY)
    assert authz.cache is not None
    listen = listen_dsn_of(store) if mode == "listen" else None
    watcher = InvalidationWatcher(store, authz.cache, listen_dsn=listen, interval=0.25)
    await watcher.start()
    if not await authz.has("alice", "trade:approve", "acme"):
        print("error: not granted at start", flush=True)
        return
    print(f"ready listening={watcher.listening}", flush=True)
    deadline = time.monotonic() + 10
    while await authz.has("alice", "trade:approve", "acme"):
        if time.monotonic() > deadline:
            print("error: never saw the revoke", flush=True)
            return
        await asyncio.sleep(0.002)
    print(f"denied {time.monotonic()} hits={authz.cache.hits}", flush=True)
    await watcher.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
