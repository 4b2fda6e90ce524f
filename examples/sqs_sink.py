"""The SQS sink against an SQS-compatible endpoint: moto's server, LocalStack or ElasticMQ.

Run: ``.venv-moto/bin/moto_server -p 4566 &`` then
``SQS_ENDPOINT_URL=http://127.0.0.1:4566 .venv/bin/python examples/sqs_sink.py``. Creates a
FIFO queue, publishes one event twice and one too large for the queue, and prints what the
queue holds afterwards (the repeat is dropped: same MessageDeduplicationId).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from aiobotocore.session import get_session

from tether.core.envelope import Event, make_event
from tether.sinks.base import Outcome
from tether.sinks.sqs import SqsSink, cloudevent_attributes

ENDPOINT_URL = os.environ.get("SQS_ENDPOINT_URL", "http://127.0.0.1:4566")
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


async def to_sqs(events: Sequence[Event], endpoint_url: str) -> Sequence[Outcome]:
    sink = await SqsSink.connect(
        "shop-orders.fifo",  # a queue name (looked up once) or its URL
        endpoint_url=endpoint_url,  # leave out for AWS itself
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    try:
        return await sink.publish(events)  # SendMessageBatch, up to 10 messages a call
    finally:
        await sink.close()


async def consume_sqs(client: Any, queue_url: str) -> list[str]:
    answer = await client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["ce"]
    )
    return [cloudevent_attributes(m)["type"] for m in answer.get("Messages", [])]


async def main() -> None:
    placed = make_event("OrderPlaced", {"order": "o-1"}, aggregate_type="order", aggregate_id="o-1")
    huge = make_event("Audit", {"pad": "x" * 300_000}, max_payload_bytes=400_000)
    session = get_session()
    async with session.create_client(
        "sqs", "us-east-1", endpoint_url=ENDPOINT_URL, **CREDENTIALS
    ) as client:
        queue_url = (
            await client.create_queue(
                QueueName="shop-orders.fifo",
                Attributes={"FifoQueue": "true", "MaximumMessageSize": "262144"},
            )
        )["QueueUrl"]
        try:
            outcomes = await to_sqs([placed, placed, huge], ENDPOINT_URL)
            print("sqs outcomes:", [o.ok for o in outcomes], "-", outcomes[2].error)
            print("sqs queue holds:", await consume_sqs(client, queue_url))
        finally:
            await client.delete_queue(QueueUrl=queue_url)


if __name__ == "__main__":
    asyncio.run(main())
