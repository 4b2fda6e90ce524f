"""The ``sqs`` sink plugin: ``[sinks.sqs]`` settings and a factory for :mod:`tether.sinks.sqs`.

Kept apart from :mod:`tether.sinks.builtin` so the settings load without aiobotocore: the
adapter is imported only when the sink is opened (the ``sqs`` extra).
"""

from __future__ import annotations

import re

from pydantic import SecretStr, field_validator, model_validator

from tether.sinks.base import Sink
from tether.sinks.registry import SinkPlugin, SinkSettings, hint

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}(\.fifo)?|[A-Za-z0-9_-]{1,80}")
_QUEUE_URL = re.compile(r"https?://[^\s/]+/[^\s/]+/[A-Za-z0-9_.-]{1,80}/?")
_MAX_MESSAGE = 1024 * 1024  # SQS's ceiling since 2025 (256 KiB before)


class SqsSettings(SinkSettings):
    queue: str | None = hint(
        "a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) or a queue name "
        "(1-80 letters, digits, - and _; a FIFO queue's ends in .fifo)",
        default=None,
    )
    region: str | None = hint(
        "an AWS region like us-east-1", default=None, pattern=r"^[a-z0-9-]{2,40}$"
    )
    endpoint_url: str | None = hint(
        "an http:// or https:// URL (moto, LocalStack, ElasticMQ, a VPC endpoint)",
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
    )
    access_key_id: str | None = hint(
        "an AWS access key id (no whitespace)", default=None, pattern=r"^\S{1,128}$"
    )
    secret_access_key: SecretStr | None = hint("a non-empty secret", default=None, min_length=1)
    session_token: SecretStr | None = hint("a non-empty token", default=None, min_length=1)
    max_message_bytes: int | None = hint(
        "bytes, 1024..1048576 (unset: the queue's MaximumMessageSize)",
        default=None,
        ge=1024,
        le=_MAX_MESSAGE,
    )
    max_batch_bytes: int = hint(
        "bytes, 1024..1048576", default=256 * 1024, ge=1024, le=_MAX_MESSAGE
    )
    max_in_flight: int = hint(
        "an integer 1..100 (SendMessageBatch calls at once)", default=10, ge=1, le=100
    )
    max_attempts: int = hint("an integer 1..10 (botocore's, per call)", default=3, ge=1, le=10)
    timeout: float = hint("seconds, > 0 and <= 300", default=10.0, gt=0, le=300)

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("https://", "http://")):
            if not _QUEUE_URL.fullmatch(value):
                raise ValueError(
                    f"sinks.sqs.queue {value!r}: a queue URL looks like "
                    "https://sqs.<region>.amazonaws.com/<account>/<name>"
                )
        elif not _QUEUE_NAME.fullmatch(value):
            raise ValueError(
                f"sinks.sqs.queue {value!r}: a queue name is 1-80 letters, digits, - and _ "
                "(a FIFO queue's ends in .fifo), or give the queue's URL"
            )
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SqsSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "sinks.sqs: give access_key_id and secret_access_key together, or neither "
                "(then botocore's chain: AWS_* variables, ~/.aws, instance roles)"
            )
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("sinks.sqs: session_token needs access_key_id and secret_access_key")
        return self


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


async def _open_sqs(s: SqsSettings) -> Sink:
    from tether.sinks.sqs import SqsSink

    assert s.queue is not None  # enabled() says so
    return await SqsSink.connect(
        s.queue,
        name="sqs",
        region=s.region,
        endpoint_url=s.endpoint_url,
        access_key_id=s.access_key_id,
        secret_access_key=_secret(s.secret_access_key),
        session_token=_secret(s.session_token),
        max_message_bytes=s.max_message_bytes,
        max_batch_bytes=s.max_batch_bytes,
        max_in_flight=s.max_in_flight,
        max_attempts=s.max_attempts,
        timeout=s.timeout,
    )


SQS: SinkPlugin[SqsSettings] = SinkPlugin(
    "sqs",
    SqsSettings,
    _open_sqs,
    enabled=lambda s: s.queue is not None,
    enable_hint="sinks.sqs.queue (Amazon SQS queue URL or name; FIFO queues by .fifo)",
)
