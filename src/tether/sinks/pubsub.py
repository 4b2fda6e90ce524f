"""Google Cloud Pub/Sub sink (gcloud-aio-pubsub, the REST API): one message per event.

* The topic is named by a template over the event (``"{topic}"`` by default, or one fixed topic
  id like ``"tether-events"``) in one project. Topic ids are checked per event against Pub/Sub's
  rules (3-255 characters, a letter first, then letters, digits and ``- _ . ~ + %``, not
  ``goog...``): an event whose topic cannot be a Pub/Sub topic fails, not retryable.
* The CloudEvents Pub/Sub binding, binary mode: ``data`` is the payload's JSON bytes untouched,
  the attribute ``content-type`` carries ``datacontenttype`` and every other CloudEvents
  attribute travels as ``ce-<name>`` (``ce-id``, ``ce-type``, ``ce-source``, ``ce-time``...).
* ``orderingKey`` is the event's partition key, when it has one: a subscription with message
  ordering enabled then delivers one aggregate's events in publish order.
* **No de-duplication on publish**: Pub/Sub stores a re-published event again (a new message
  id). Consumers de-duplicate by the ``ce-id`` attribute (Tether's inbox does).
* A batch goes out as one publish request per topic and up to :data:`MAX_REQUEST_MESSAGES`
  messages / about :data:`MAX_REQUEST_BYTES` of request body, the requests in flight together.
  A request is all or nothing: every message in it gets the request's outcome.
* Per request: 200 with one message id per message → OK. 400 (INVALID_ARGUMENT) and 413 →
  the messages are re-sent one per request to find the refused one, whose failure is then not
  retryable. 404 (the topic does not exist) → failed, retryable: the sink never creates
  topics (a topic without a subscription drops what is published to it), so the events wait,
  spending attempts, until someone creates the topic or they run out. 429, 5xx, other
  answers, or no answer within ``timeout`` → failed, retryable (a message may have been
  stored: consumers de-duplicate by ``ce-id``).
* A message over ``max_message_bytes`` (Pub/Sub's limit is 10 MB) → failed, not retryable,
  before sending; the error names its size. (The emulator does not enforce this limit.)
* :class:`SinkUnavailableError` for the whole call: Pub/Sub unreachable (connection refused or
  lost), 401/403 (credentials refused, or no permission to publish: the events wait without
  spending attempts while someone fixes the grant), no access token, or no request of the call
  answered within ``timeout``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from gcloud.aio.pubsub import PublisherClient

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks import _keys
from tether.sinks._pubsub_names import check_project, topic_template
from tether.sinks.base import OK, Outcome, SinkFeatures

ATTRIBUTE_PREFIX = "ce-"
CONTENT_TYPE = "content-type"
EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"
DEFAULT_API_ROOT = "https://pubsub.googleapis.com/v1"
MAX_MESSAGE_BYTES = 10_000_000
"""Pub/Sub's limit on one message (10 MB); counted as Pub/Sub does: data, attributes, key."""
MAX_REQUEST_MESSAGES = 1000
MAX_REQUEST_BYTES = 10_000_000
"""Pub/Sub's limit on one publish request (10 MB). The REST body carries the data in base64
(4/3 of its size): the sink keeps the body under this, except for a lone large message."""

_ISOLATE_STATUS = {400, 413}
_AUTH_STATUS = {401, 403}


class PubSubSink:
    """Publish events to Pub/Sub topics. Build with :meth:`connect`, or pass a
    ``gcloud.aio.pubsub.PublisherClient`` you own."""

    features = SinkFeatures(
        dedups_by_id=False, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        client: PublisherClient,
        *,
        project: str,
        topic: str = "{topic}",
        name: str = "pubsub",
        timeout: float = 5.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        owns_client: bool = False,
    ) -> None:
        check_project(project)
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        if not 1 <= max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ConfigError(
                f"max_message_bytes must be 1..{MAX_MESSAGE_BYTES} (Pub/Sub's limit), "
                f"got {max_message_bytes!r}"
            )
        self.name = name
        self.project = project
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self._topic = topic_template(topic)
        self._client = client
        self._owns = owns_client
        self._closed = False
        self.stats = {"published": 0, "requests": 0, "failed": 0}

    @classmethod
    async def connect(
        cls,
        *,
        project: str,
        topic: str = "{topic}",
        name: str = "pubsub",
        emulator_host: str | None = None,
        api_root: str | None = None,
        credentials_file: str | None = None,
        timeout: float = 5.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> PubSubSink:
        """A client of its own. ``emulator_host`` (``host:port``; else ``PUBSUB_EMULATOR_HOST``
        when ``api_root`` is not given either) talks to an emulator, without credentials.
        Otherwise ``api_root`` (default ``https://pubsub.googleapis.com/v1``; a regional
        endpoint such as ``https://europe-west1-pubsub.googleapis.com/v1`` keeps ordered
        publishes in one region) with a token from ``credentials_file`` or, without it,
        Application Default Credentials.

        No request is made here: a publisher may hold no permission but ``topics.publish``,
        so the first ``publish`` is the first to learn whether Pub/Sub answers."""
        check_project(project)
        topic_template(topic)
        root, dev = _endpoint(emulator_host, api_root, credentials_file)
        client = PublisherClient(service_file=credentials_file, api_root=root, api_is_dev=dev)
        try:
            return cls(
                client,
                project=project,
                topic=topic,
                name=name,
                timeout=timeout,
                max_message_bytes=max_message_bytes,
                owns_client=True,
            )
        except BaseException:
            await client.close()
            raise

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        outcomes: list[Outcome | None] = [None] * len(events)
        by_topic: dict[str, list[_Message]] = {}
        for i, event in enumerate(events):
            checked = self._check(i, event)
            if isinstance(checked, Outcome):
                outcomes[i] = checked
            else:
                by_topic.setdefault(checked[0], []).append(checked[1])
        requests = [
            _Request(topic, part)
            for topic, messages in by_topic.items()
            for part in _split(messages)
        ]
        if requests:
            await self._send_all(requests, outcomes)
        return [o or OK for o in outcomes]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns:
            await self._client.close()

    # -- internals ---------------------------------------------------------------------------

    def _check(self, i: int, event: Event) -> tuple[str, _Message] | Outcome:
        """The event's topic and message, or the outcome of an event that cannot be sent."""
        try:
            topic = self._topic(event)
        except _keys.KeyTemplateError as exc:
            return Outcome.failed(str(exc), retryable=False)
        message = _Message.of(i, event)
        if message.size > self.max_message_bytes:
            return Outcome.failed(
                f"message of {message.size} bytes (data {len(event.data)} bytes and its "
                f"attributes) is over max_message_bytes ({self.max_message_bytes}; Pub/Sub "
                "refuses messages over 10 MB)",
                retryable=False,
            )
        return PublisherClient.topic_path(self.project, topic), message

    async def _send_all(self, requests: list[_Request], outcomes: list[Outcome | None]) -> None:
        results = await asyncio.gather(*(self._send(r) for r in requests), return_exceptions=True)
        down = [r for r in results if isinstance(r, SinkUnavailableError)]
        if down:
            raise down[0]
        unexpected = [r for r in results if isinstance(r, BaseException)]
        if unexpected:
            raise unexpected[0]
        if all(r.timed_out for r in results if isinstance(r, _Answer)):
            raise SinkUnavailableError(
                f"sink {self.name!r}: Pub/Sub answered none of {len(requests)} publish "
                f"request(s) within {self.timeout}s; the events wait (re-published messages "
                "are de-duplicated by consumers by ce-id)"
            )
        for request, result in zip(requests, results, strict=True):
            assert isinstance(result, _Answer)
            for message, outcome in zip(request.messages, result.outcomes, strict=True):
                outcomes[message.index] = outcome

    async def _send(self, request: _Request) -> _Answer:
        answer = await self._post(request)
        if answer.isolate and len(request.messages) > 1:
            # A request is all or nothing: one message Pub/Sub refuses would fail its
            # neighbours. One request per message finds it (calls never share an ordering
            # key, so sending them apart keeps every key's order).
            singles = [_Request(request.topic, [m]) for m in request.messages]
            answers = await asyncio.gather(*(self._post(r) for r in singles))
            return _Answer([a.outcomes[0] for a in answers])
        return answer

    async def _post(self, request: _Request) -> _Answer:
        self.stats["requests"] += 1
        count = len(request.messages)
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._client.publish(
                    request.topic, request.wire(), timeout=max(1, round(self.timeout))
                )
        except aiohttp.ClientResponseError as exc:
            return self._refused(request, exc)
        except TimeoutError:  # before OSError, its base class (aiohttp's read timeouts too)
            return _Answer.all_of(
                count,
                Outcome.failed(
                    f"Pub/Sub did not answer within {self.timeout}s (the messages may be stored: "
                    "consumers de-duplicate by ce-id)"
                ),
                timed_out=True,
            )
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise SinkUnavailableError(
                f"sink {self.name!r}: cannot reach Pub/Sub ({exc}); the events wait"
            ) from exc
        except Exception as exc:  # a reply that is not JSON, a token source that broke...
            self.stats["failed"] += count
            return _Answer.all_of(
                count, Outcome.failed(f"publishing to Pub/Sub failed: {type(exc).__name__}: {exc}")
            )
        ids = reply.get("messageIds") if isinstance(reply, dict) else None
        if not isinstance(ids, list) or len(ids) != count:
            self.stats["failed"] += count
            return _Answer.all_of(
                count, Outcome.failed(f"Pub/Sub answered {reply!r} for {count} message(s)")
            )
        self.stats["published"] += count
        return _Answer.all_of(count, OK)

    def _refused(self, request: _Request, exc: aiohttp.ClientResponseError) -> _Answer:
        status, text = exc.status, _error_text(exc)
        count = len(request.messages)
        if not str(exc.request_info.real_url).endswith(":publish"):
            # Raised by the token request, not by Pub/Sub: the credentials do not work.
            raise SinkUnavailableError(
                f"sink {self.name!r}: cannot get an access token for Pub/Sub (HTTP {status}: "
                f"{text}); check credentials_file or Application Default Credentials"
            ) from exc
        if status in _AUTH_STATUS:
            raise SinkUnavailableError(
                f"sink {self.name!r}: Pub/Sub refused to let this sink publish to "
                f"{request.topic} (HTTP {status}: {text}); grant roles/pubsub.publisher on the "
                "topic or fix the credentials. The events wait without spending attempts"
            ) from exc
        self.stats["failed"] += count
        where = f"Pub/Sub refused publishing to {request.topic} (HTTP {status}: {text})"
        if status == 404:
            outcome = Outcome.failed(
                f"{where}; create the topic and its subscriptions: the sink does not create "
                "topics (one without a subscription would drop the events)"
            )
        elif status in _ISOLATE_STATUS:
            return _Answer.all_of(count, Outcome.failed(where, retryable=False), isolate=True)
        else:  # 429, 5xx and the rest: the same request may well pass later
            outcome = Outcome.failed(where)
        return _Answer.all_of(count, outcome)


@dataclass(frozen=True, slots=True)
class _Message:
    index: int
    body: dict[str, Any]
    """The REST ``PubsubMessage``: base64 data, attributes, ordering key."""
    size: int
    """Pub/Sub's measure: data, attribute names and values, ordering key, in bytes."""
    wire_size: int
    """About what the message adds to the JSON request body."""

    @staticmethod
    def of(index: int, event: Event) -> _Message:
        attributes = message_attributes(event)
        body: dict[str, Any] = {
            "data": base64.b64encode(event.data).decode("ascii"),
            "attributes": attributes,
        }
        key = event.partition_key or ""
        if key:
            body["orderingKey"] = key
        meta = sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())
        size = len(event.data) + meta + len(key.encode())
        # base64 data, and JSON quoting/escaping of attributes (\uXXXX for non-ASCII at worst)
        wire = len(body["data"]) + 6 * (meta + len(key.encode())) + 64 + 8 * len(attributes)
        return _Message(index, body, size, wire)


class _Wire:
    """A message in the form ``PublisherClient.publish`` serialises (its ``to_repr``)."""

    __slots__ = ("body",)

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def to_repr(self) -> dict[str, Any]:
        return self.body


@dataclass(frozen=True, slots=True)
class _Request:
    topic: str
    messages: list[_Message]

    def wire(self) -> list[Any]:
        # The client only calls ``to_repr()`` on each message: the sink has encoded the data
        # already, rather than let PubsubMessage base64 it again per attempt.
        return [_Wire(m.body) for m in self.messages]


@dataclass(frozen=True, slots=True)
class _Answer:
    outcomes: list[Outcome]
    timed_out: bool = False
    isolate: bool = False

    @staticmethod
    def all_of(
        count: int, outcome: Outcome, *, timed_out: bool = False, isolate: bool = False
    ) -> _Answer:
        return _Answer([outcome] * count, timed_out, isolate)


def _split(messages: list[_Message]) -> list[list[_Message]]:
    """Requests of up to MAX_REQUEST_MESSAGES messages and about MAX_REQUEST_BYTES of body."""
    parts: list[list[_Message]] = []
    part: list[_Message] = []
    size = 0
    for message in messages:
        if part and (
            len(part) >= MAX_REQUEST_MESSAGES or size + message.wire_size > MAX_REQUEST_BYTES
        ):
            parts.append(part)
            part, size = [], 0
        part.append(message)
        size += message.wire_size
    if part:
        parts.append(part)
    return parts


def message_attributes(event: Event) -> dict[str, str]:
    """The Pub/Sub attributes of ``event`` (the CloudEvents Pub/Sub binding, binary mode):
    ``content-type`` = ``datacontenttype``, every other attribute as ``ce-<name>``."""
    attrs = event.cloudevent_attributes()
    out = {CONTENT_TYPE: attrs.pop("datacontenttype")}
    out.update({ATTRIBUTE_PREFIX + k: v for k, v in attrs.items()})
    return out


def cloudevent_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """Read the CloudEvents attributes back from the attributes of a message this sink
    published (what a subscriber receives)."""
    attrs = {
        k[len(ATTRIBUTE_PREFIX) :]: v
        for k, v in attributes.items()
        if k.startswith(ATTRIBUTE_PREFIX)
    }
    if CONTENT_TYPE in attributes:
        attrs["datacontenttype"] = attributes[CONTENT_TYPE]
    return attrs


def _endpoint(
    emulator_host: str | None, api_root: str | None, credentials_file: str | None
) -> tuple[str, bool]:
    """The API root and whether it is an emulator (no credentials, no TLS)."""
    if emulator_host and api_root:
        raise ConfigError("give emulator_host or api_root, not both")
    if api_root:
        return api_root.rstrip("/"), False
    host = emulator_host or (None if credentials_file else os.environ.get(EMULATOR_ENV))
    if host:
        if credentials_file:
            raise ConfigError(
                "credentials_file is for Google Cloud; the emulator takes none (drop one of "
                "emulator_host and credentials_file)"
            )
        if "/" in host or ":" not in host:
            raise ConfigError(f"emulator host {host!r} must be host:port, like 127.0.0.1:8085")
        return f"http://{host}/v1", True
    if credentials_file is not None and not os.path.isfile(credentials_file):
        raise ConfigError(f"credentials_file {credentials_file!r} is not a readable file")
    return DEFAULT_API_ROOT, False


def _error_text(exc: aiohttp.ClientResponseError) -> str:
    """Google's error status and message from the body the client put in the exception."""
    _, _, body = exc.message.partition(": ")
    try:
        error = json.loads(body)["error"]
        return f"{error.get('status', '')} {error.get('message', '')}".strip()
    except (ValueError, KeyError, TypeError):
        return exc.message[:300]
