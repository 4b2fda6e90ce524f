"""Queues for the SQS sink's tests: create one with a unique name, read back what it holds,
delete it. Talks to moto's server (``tests/support/moto_server.py``) with aiobotocore.

moto's SendMessage and ReceiveMessage take time in proportion to the messages the queue holds
(it recounts them for the queue's attributes on every message sent): keep test queues to
hundreds of messages, not thousands."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session

from tests.support.moto_server import CREDENTIALS, REGION


@asynccontextmanager
async def sqs_client(endpoint_url: str) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
    ) as client:
        yield client


class Queue:
    """One queue, named ``<prefix>-<uuid>`` (``.fifo`` for FIFO), deleted by :meth:`delete`."""

    def __init__(self, client: Any, url: str, name: str) -> None:
        self.client, self.url, self.name = client, url, name
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def create(
        cls, client: Any, prefix: str = "tether", *, fifo: bool = False, **attributes: str
    ) -> Queue:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
        if fifo:
            attributes["FifoQueue"] = "true"
        answer = await client.create_queue(QueueName=name, Attributes=attributes)
        return cls(client, answer["QueueUrl"], name)

    async def drain(self, rounds: int = 1000) -> list[dict[str, Any]]:
        """Receive and delete until the queue answers empty (bounded); every message received
        so far, with its attributes and system attributes."""
        for _ in range(rounds):
            if not await self._round():
                return list(self.received)
        raise AssertionError(f"queue {self.name} still not empty after {rounds} receives")

    async def _round(self) -> int:
        """One ReceiveMessage (up to 10) and the delete of what it gave; how many it gave."""
        answer = await self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=300,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if messages:
            self.received.extend(messages)
            await self.client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return len(messages)

    async def count(self) -> int:
        """Messages in the queue now (visible or not), without receiving them."""
        answer = await self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attrs = answer["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    async def delete(self) -> None:
        await self.client.delete_queue(QueueUrl=self.url)
