"""Amazon SQS sink (aiobotocore): SendMessageBatch, standard and FIFO queues.

* Each event is one message. The body is the payload's JSON text, untouched. The CloudEvents
  attributes travel as String message attributes, within SQS's limit of 10 per message: ``ce``
  holds every attribute as one compact JSON object (the lossless copy, what
  :func:`cloudevent_attributes` reads), and ``ce_id``, ``ce_type``, ``ce_source``, ``ce_time``,
  ``ce_topic``, ``ce_tenantid`` and ``ce_traceparent`` (the last two when set) repeat the ones
  consumers filter and trace on, so nobody has to parse ``ce`` for them.
* A FIFO queue (its name ends in ``.fifo``) gets ``MessageDeduplicationId`` = event id, so a
  re-published event within SQS's 5-minute window is stored once, and ``MessageGroupId`` = the
  partition key (else the aggregate id, else the event id), so one aggregate's events stay in
  order. A group key SQS cannot take as it is (over 128 characters, or characters other than
  printable ASCII) is replaced by ``sha256-<hex of the key>``: still one group per key.
* A batch is sent in SendMessageBatch calls of at most 10 entries and at most
  ``max_batch_bytes`` (256 KiB: SQS's batch limit before 2025, still that of most emulators),
  up to ``max_in_flight`` calls at once. A message's size counts as SQS counts it: body plus
  each attribute's name, type and value.
* Per event: in ``Successful`` → OK; in ``Failed`` with ``SenderFault`` → failed, not
  retryable (SQS refused this message), without → failed, retryable. Over the queue's
  ``MaximumMessageSize`` → failed before sending, not retryable, naming the size. A call
  refused as a whole for its content (``InvalidParameterValue``, ``BatchRequestTooLong``...,
  which some servers answer for one bad entry) is sent again one message at a time, so only
  the bad event fails (not retryable).
* The whole call → :class:`SinkUnavailableError` (the relay defers, no attempt spent): the
  endpoint unreachable or timing out, throttling and server errors once botocore's own retries
  (``max_attempts``) are spent, the queue gone (``QueueDoesNotExist``), credentials or
  permissions refused (``AccessDenied``, ``InvalidClientTokenId``...) or the queue's KMS key
  unusable: all fixed outside the event, none the fault of one event.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks.base import OK, Outcome, SinkFeatures

if TYPE_CHECKING:
    from types_aiobotocore_sqs.client import SQSClient
    from types_aiobotocore_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

MAX_ENTRIES = 10
"""SendMessageBatch takes at most 10 entries."""
MAX_BATCH_BYTES = 256 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
"""Assumed when the queue's ``MaximumMessageSize`` cannot be read (no permission)."""
ATTRIBUTES = "ce"
"""The attribute holding every CloudEvents attribute as one compact JSON object."""
PROMOTED = ("id", "type", "source", "time", "topic", "tenantid", "traceparent")
"""Attributes also sent on their own, as ``ce_<name>`` (7 + ``ce``: within SQS's 10)."""
_STRING = "String"

_AWS_URL = re.compile(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")
_GROUP_ID = re.compile(r"[!-~]{1,128}")  # what SQS takes for MessageGroupId

# Whole-target conditions: no event's fault, fixed outside the relay. Spelled as both the
# JSON protocol (QueueDoesNotExist) and the query protocol (AWS.SimpleQueueService...) say it.
_THROTTLED = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "RequestThrottledException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
        "KMS.ThrottlingException",
    }
)
_QUEUE_GONE = frozenset(
    {
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDeletedRecently",
        "AWS.SimpleQueueService.QueueDeletedRecently",
    }
)
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSecurity",
        "ExpiredToken",
        "RequestExpired",
        "MissingAuthenticationToken",
        "KmsAccessDenied",
        "KmsDisabled",
        "KmsInvalidKeyUsage",
        "KmsInvalidState",
        "KmsNotFound",
        "KmsOptInRequired",
        "KMS.AccessDeniedException",
        "KMS.DisabledException",
        "KMS.NotFoundException",
    }
)

STANDARD_FEATURES = SinkFeatures(
    dedups_by_id=False, durable=True, can_be_unavailable=True, fails_per_event=True
)
FIFO_FEATURES = SinkFeatures(
    dedups_by_id=True, durable=True, can_be_unavailable=True, fails_per_event=True
)


@dataclass(frozen=True, slots=True)
class _Message:
    index: int
    entry: SendMessageBatchRequestEntryTypeDef
    size: int


class SqsSink:
    """Send events to one SQS queue. Build with :meth:`connect` (owns its client), or pass an
    aiobotocore SQS client you own and the queue's URL."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        name: str = "sqs",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_in_flight: int = 10,
        timeout: float = 10.0,
        owner: AsyncExitStack | None = None,
    ) -> None:
        if max_message_bytes < 1:
            raise ConfigError(f"max_message_bytes must be positive, got {max_message_bytes!r}")
        if max_batch_bytes < 1:
            raise ConfigError(f"max_batch_bytes must be positive, got {max_batch_bytes!r}")
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        self.name = name
        self.queue_url = queue_url
        self.fifo = queue_name(queue_url).endswith(".fifo")
        self.features = FIFO_FEATURES if self.fifo else STANDARD_FEATURES
        self.max_message_bytes = max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self.timeout = timeout
        self._client = client
        self._owner = owner
        self._slots = asyncio.Semaphore(max_in_flight)
        self._closed = False
        self.stats = {"calls": 0, "sent": 0, "refused": 0, "too_large": 0, "isolated_calls": 0}

    @classmethod
    async def connect(
        cls,
        queue: str,
        *,
        name: str = "sqs",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_message_bytes: int | None = None,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_in_flight: int = 10,
        max_attempts: int = 3,
        timeout: float = 10.0,
    ) -> SqsSink:
        """A client of its own; ``queue`` is a queue URL or a name (resolved with GetQueueUrl
        once, here). Unset credentials and region come from botocore's usual chain (``AWS_*``
        variables, ``~/.aws``); the region defaults to the one an AWS queue URL names.
        ``max_message_bytes`` defaults to the queue's ``MaximumMessageSize`` (read here; 256
        KiB if the caller may not read it). ``max_attempts`` is botocore's, per call,
        throttling included; ``timeout`` bounds each call, its retries included."""
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigError("give both access_key_id and secret_access_key, or neither")
        region = region or region_of(queue)
        config = AioConfig(
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            max_pool_connections=max_in_flight,
        )
        owner = AsyncExitStack()
        try:
            client = await owner.enter_async_context(
                get_session().create_client(
                    "sqs",
                    region_name=region,
                    endpoint_url=endpoint_url,
                    aws_access_key_id=access_key_id,
                    aws_secret_access_key=secret_access_key,
                    aws_session_token=session_token,
                    config=config,
                )
            )
        except NoRegionError:
            await owner.aclose()
            raise ConfigError(
                "SQS needs a region: set region (sinks.sqs.region) or AWS_DEFAULT_REGION"
            ) from None
        except BaseException:
            await owner.aclose()
            raise
        try:
            async with asyncio.timeout(timeout * max_attempts + 1):
                url = await _resolve(client, queue, endpoint_url)
                limit = max_message_bytes or await _queue_limit(client, url)
            return cls(
                client,
                url,
                name=name,
                max_message_bytes=limit,
                max_batch_bytes=max_batch_bytes,
                max_in_flight=max_in_flight,
                timeout=timeout,
                owner=owner,
            )
        except TimeoutError:
            await owner.aclose()
            raise SinkUnavailableError(
                f"SQS at {endpoint_url or 'AWS'} did not answer within {timeout}s"
            ) from None
        except BaseException:
            await owner.aclose()
            raise

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        outcomes: list[Outcome | None] = [None] * len(events)
        messages: list[_Message] = []
        for i, event in enumerate(events):
            message = self._message(i, event)
            if message.size > self.max_message_bytes:
                self.stats["too_large"] += 1
                outcomes[i] = Outcome.failed(
                    f"message of {message.size} bytes (body and attributes) is over the "
                    f"queue's maximum message size of {self.max_message_bytes} bytes",
                    retryable=False,
                )
            else:
                messages.append(message)
        calls = [self._send(chunk, outcomes) for chunk in self._chunks(messages)]
        if calls:
            results = await asyncio.gather(*calls, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return [o or OK for o in outcomes]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owner is not None:
            await self._owner.aclose()

    # -- internals ---------------------------------------------------------------------------

    def _message(self, index: int, event: Event) -> _Message:
        body = event.data.decode()
        attrs = event.cloudevent_attributes()
        values = {ATTRIBUTES: orjson.dumps(attrs).decode()}
        values.update({f"ce_{k}": attrs[k] for k in PROMOTED if k in attrs})
        size = len(event.data) + sum(
            len(k) + len(_STRING) + len(v.encode()) for k, v in values.items()
        )
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            k: {"DataType": _STRING, "StringValue": v} for k, v in values.items()
        }
        entry: SendMessageBatchRequestEntryTypeDef = {
            "Id": str(index),
            "MessageBody": body,
            "MessageAttributes": attributes,
        }
        if self.fifo:
            entry["MessageGroupId"] = group_id(event)
            entry["MessageDeduplicationId"] = str(event.id)
        return _Message(index, entry, size)

    def _chunks(self, messages: list[_Message]) -> list[list[_Message]]:
        """At most 10 entries and ``max_batch_bytes`` a call; a message larger than that alone
        (the queue takes it, its limit being higher)."""
        chunks: list[list[_Message]] = []
        current: list[_Message] = []
        size = 0
        for message in messages:
            if current and (
                len(current) == MAX_ENTRIES or size + message.size > self.max_batch_bytes
            ):
                chunks.append(current)
                current, size = [], 0
            current.append(message)
            size += message.size
        if current:
            chunks.append(current)
        return chunks

    async def _send(self, chunk: list[_Message], outcomes: list[Outcome | None]) -> None:
        async with self._slots:
            self.stats["calls"] += 1
            try:
                async with asyncio.timeout(self.timeout):
                    result = await self._client.send_message_batch(
                        QueueUrl=self.queue_url, Entries=[m.entry for m in chunk]
                    )
            except TimeoutError:
                raise self._timed_out() from None
            except ClientError as exc:
                self._raise_if_unavailable(exc)
                # Refused as a whole for its content: find the event(s) at fault.
                await self._send_one_by_one(chunk, outcomes)
                return
            except ParamValidationError:
                await self._send_one_by_one(chunk, outcomes)
                return
            except (BotoCoreError, OSError) as exc:
                raise self._unreachable(exc) from exc
        for ok in result.get("Successful", []):
            self.stats["sent"] += 1
            outcomes[int(ok["Id"])] = OK
        for failed in result.get("Failed", []):
            self.stats["refused"] += 1
            outcomes[int(failed["Id"])] = Outcome.failed(
                f"SQS refused the message: {failed['Code']}: {failed.get('Message', '')}",
                retryable=not failed["SenderFault"],
            )
        for m in chunk:
            if outcomes[m.index] is None:  # neither listed: do not report it delivered
                outcomes[m.index] = Outcome.failed("SQS's answer did not mention the message")

    async def _send_one_by_one(self, chunk: list[_Message], outcomes: list[Outcome | None]) -> None:
        self.stats["isolated_calls"] += 1
        for m in chunk:
            entry: dict[str, Any] = {k: v for k, v in m.entry.items() if k != "Id"}
            try:
                async with asyncio.timeout(self.timeout):
                    await self._client.send_message(QueueUrl=self.queue_url, **entry)
            except TimeoutError:
                raise self._timed_out() from None
            except ClientError as exc:
                self._raise_if_unavailable(exc)
                self.stats["refused"] += 1  # a 4xx for this message alone (5xx raised above)
                outcomes[m.index] = Outcome.failed(
                    f"SQS refused the message: {_describe(exc)}", retryable=False
                )
                continue
            except ParamValidationError as exc:
                outcomes[m.index] = Outcome.failed(
                    f"SQS cannot take the message: {exc}", retryable=False
                )
                continue
            except (BotoCoreError, OSError) as exc:
                raise self._unreachable(exc) from exc
            self.stats["sent"] += 1
            outcomes[m.index] = OK

    def _raise_if_unavailable(self, exc: ClientError) -> None:
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _QUEUE_GONE:
            raise SinkUnavailableError(
                f"sink {self.name!r}: SQS queue {self.queue_url} does not exist ({code}); "
                "events wait until it is created"
            ) from exc
        if code in _DENIED:
            raise SinkUnavailableError(
                f"sink {self.name!r}: SQS refused the credentials or the permission to send "
                f"to {self.queue_url} ({_describe(exc)}); events wait until that is fixed"
            ) from exc
        if code in _THROTTLED or status >= 500:
            raise SinkUnavailableError(
                f"sink {self.name!r}: SQS is throttling or failing ({_describe(exc)}) after "
                "botocore's retries; events wait"
            ) from exc

    def _timed_out(self) -> SinkUnavailableError:
        return SinkUnavailableError(
            f"sink {self.name!r}: SQS did not answer a call within {self.timeout}s; the batch "
            "will be re-published"
        )

    def _unreachable(self, exc: BaseException) -> SinkUnavailableError:
        if isinstance(exc, NoCredentialsError):
            return SinkUnavailableError(f"sink {self.name!r}: no AWS credentials found: {exc}")
        return SinkUnavailableError(
            f"sink {self.name!r}: cannot reach SQS for {self.queue_url}: {exc}; the batch "
            "will be re-published"
        )


async def _resolve(client: SQSClient, queue: str, endpoint_url: str | None) -> str:
    """The queue's URL; a name is looked up with GetQueueUrl (errors say what to fix)."""
    where = endpoint_url or "AWS"
    try:
        if is_url(queue):
            # One call anyway: a wrong endpoint or credentials fail here, not at the first event.
            await client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
            return queue
        return (await client.get_queue_url(QueueName=queue))["QueueUrl"]
    except ClientError as exc:
        code = error_code(exc)
        if code in _QUEUE_GONE:
            raise ConfigError(
                f"SQS queue {queue!r} does not exist at {where}: create it or fix the name"
            ) from None
        if code in _DENIED:
            raise ConfigError(
                f"SQS at {where} refused the credentials or access to queue {queue!r}: "
                f"{_describe(exc)}"
            ) from None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _THROTTLED or status >= 500:
            raise SinkUnavailableError(f"SQS at {where}: {_describe(exc)}") from exc
        raise ConfigError(f"SQS at {where} refused queue {queue!r}: {_describe(exc)}") from None
    except NoCredentialsError:
        raise ConfigError(
            "no AWS credentials found: set access_key_id and secret_access_key "
            "(sinks.sqs) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except (BotoCoreError, OSError) as exc:
        raise SinkUnavailableError(f"cannot reach SQS at {where}: {exc}") from exc


async def _queue_limit(client: SQSClient, url: str) -> int:
    """The queue's ``MaximumMessageSize``; the old default when the caller may not read it."""
    try:
        found = await client.get_queue_attributes(
            QueueUrl=url, AttributeNames=["MaximumMessageSize"]
        )
    except ClientError as exc:
        if error_code(exc) in _DENIED:
            return DEFAULT_MAX_MESSAGE_BYTES
        raise SinkUnavailableError(f"SQS: cannot read queue {url}: {_describe(exc)}") from exc
    except (BotoCoreError, OSError) as exc:
        raise SinkUnavailableError(f"cannot reach SQS for {url}: {exc}") from exc
    return int(found.get("Attributes", {}).get("MaximumMessageSize", DEFAULT_MAX_MESSAGE_BYTES))


def is_url(queue: str) -> bool:
    return queue.startswith(("https://", "http://"))


def region_of(queue: str) -> str | None:
    """The region named in an AWS queue URL (``https://sqs.<region>.amazonaws.com/...``)."""
    found = _AWS_URL.match(queue)
    return found.group(1) if found else None


def queue_name(queue: str) -> str:
    """The queue's name, from a URL (its last path segment) or the name itself."""
    return queue.rstrip("/").rsplit("/", 1)[-1] if is_url(queue) else queue


def group_id(event: Event) -> str:
    """The FIFO ``MessageGroupId``: the partition key, else the aggregate id, else the event
    id; a key SQS cannot take as it is becomes ``sha256-<hex>``, one group per key still."""
    key = event.partition_key or event.aggregate_id or str(event.id)
    if _GROUP_ID.fullmatch(key):
        return key
    return "sha256-" + hashlib.sha256(key.encode()).hexdigest()


def cloudevent_attributes(message: dict[str, Any]) -> dict[str, str]:
    """The CloudEvents attributes of a message this sink sent, as ReceiveMessage returns it
    (ask for ``MessageAttributeNames=["ce"]`` or ``["All"]``)."""
    try:
        raw = message["MessageAttributes"][ATTRIBUTES]["StringValue"]
    except KeyError:
        raise ValueError(
            f"the message has no {ATTRIBUTES!r} attribute: it was not sent by SqsSink, or "
            f"ReceiveMessage did not ask for it (MessageAttributeNames=['{ATTRIBUTES}'])"
        ) from None
    attrs = orjson.loads(raw)
    assert isinstance(attrs, dict)
    return {str(k): str(v) for k, v in attrs.items()}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
