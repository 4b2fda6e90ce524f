"""A relay process for chaos tests: PostgreSQL outbox -> JetStream, reconnecting forever.

Run as ``python -m tests.chaos.relay_process DSN SUBJECT_PREFIX``; killed with SIGKILL by tests.
"""

from __future__ import annotations

import asyncio
import sys

from tests.support.services import NATS_URL
from tether.core.errors import SinkUnavailableError
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.jetstream import JetStreamSink


async def main(dsn: str, prefix: str) -> None:
    while True:
        try:
            sink = await JetStreamSink.connect(NATS_URL, subject_prefix=prefix, ack_timeout=2.0)
            break
        except SinkUnavailableError:
            await asyncio.sleep(0.2)
    store = await PostgresOutboxStore.connect(dsn, connections=2)
    relay = Relay(
        store, [sink], config=RelayConfig(batch_size=200, concurrency=2, publish_timeout=5)
    )
    print("relay ready", flush=True)
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
