"""NATS wire details of the JetStream sink: subjects, CloudEvents headers, HPUB frames, PubAcks.

Pure functions, no I/O, so they are unit-tested without a server.
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import orjson

from tether.core.envelope import Event
from tether.core.errors import ConfigError

MSG_ID_HEADER = "Nats-Msg-Id"
CE_PREFIX = "ce-"

# A published subject: dot-separated non-empty tokens, no whitespace, no wildcards.
_SUBJECT = re.compile(r"^[^\s.*>]+(?:\.[^\s.*>]+)*$")
_MAX_SUBJECT = 1024
# Header values keep printable ASCII (and tab) as is; "%", CR, LF and everything outside
# ASCII are percent-encoded as UTF-8, like the CloudEvents HTTP binding does.
_SAFE = "\t" + "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")

# Fields a subject template may use, and the event attribute each one reads.
_TEMPLATE_FIELDS = {
    "topic": "topic",
    "type": "type",
    "version": "version",
    "tenant": "tenant_id",
    "aggregate_type": "aggregate_type",
}

SubjectFn = Callable[[Event], str]


class SubjectError(ValueError):
    """The subject derived for one event is not a valid NATS publish subject."""


def check_subject(subject: str) -> str:
    if len(subject) > _MAX_SUBJECT or not _SUBJECT.match(subject):
        raise SubjectError(
            f"subject {subject!r} is not a valid NATS publish subject: use dot-separated, "
            "non-empty tokens without whitespace or the wildcards * and >"
        )
    return subject


def template_subject(template: str, prefix: str) -> SubjectFn:
    """Compile ``template`` (fields: prefix, topic, type, version, tenant, aggregate_type).

    Raises :class:`ConfigError` at once for unknown fields or a bad prefix; subjects are
    validated per event and cached by the fields the template uses.
    """
    if prefix:
        check_prefix(prefix)
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    unknown = sorted({f for f in fields if f != "prefix" and f not in _TEMPLATE_FIELDS})
    if unknown or any(not f for f in fields):
        raise ConfigError(
            f"subject template {template!r} uses unknown fields {unknown or ['(positional)']}; "
            f"use named fields from: prefix, {', '.join(_TEMPLATE_FIELDS)}"
        )
    used = tuple(dict.fromkeys(f for f in fields if f != "prefix"))
    # attrgetter of one name returns the value itself, of several a tuple: both hashable.
    get_key: Callable[[Event], object] = (
        operator.attrgetter(*(_TEMPLATE_FIELDS[f] for f in used)) if used else lambda e: ()
    )
    cache: dict[object, str] = {}

    def subject(event: Event) -> str:
        key = get_key(event)
        found = cache.get(key)
        if found is not None:
            return found
        values = key if len(used) > 1 else (key,) if used else ()
        assert isinstance(values, tuple)
        missing = [name for name, value in zip(used, values, strict=True) if value is None]
        if missing:
            raise SubjectError(f"subject template {template!r} needs {missing}; the event has none")
        named = dict(zip(used, values, strict=True))
        built = check_subject(template.format(prefix=prefix, **named))
        if len(cache) >= 10_000:
            cache.clear()
        cache[key] = built
        return built

    return subject


def check_prefix(prefix: str) -> str:
    try:
        return check_subject(prefix)
    except SubjectError as exc:
        raise ConfigError(f"subject prefix {prefix!r} is invalid: {exc}") from exc


def header_block(event: Event) -> bytes:
    """:func:`header_text`, encoded."""
    return header_text(event).encode()


def header_text(event: Event) -> str:
    """The NATS header block: ``Nats-Msg-Id`` plus every CloudEvents attribute as ``ce-*``.

    Hot path: written out field by field instead of going through
    :meth:`Event.cloudevent_attributes` (about 3x faster); ``reference_header_block`` is the
    plain version the unit tests compare it with, so the two cannot drift apart. When any
    value needs percent-encoding (non-ASCII, "%", CR/LF: see :func:`encode_value`), the
    plain version builds the block.
    """
    e = event
    eid = str(e.id)
    text = (
        f"NATS/1.0\r\nNats-Msg-Id: {eid}\r\nce-specversion: 1.0\r\nce-id: {eid}\r\n"
        f"ce-source: {e.source}\r\nce-type: {e.type}\r\nce-time: {e.created_at.isoformat()}\r\n"
        f"ce-datacontenttype: application/json\r\nce-topic: {e.topic}\r\n"
        f"ce-eventversion: {e.version}\r\n"
    )
    lines = 10
    agg_id = e.aggregate_id
    if agg_id is not None:
        agg_type = e.aggregate_type
        if agg_type:
            text += (
                f"ce-subject: {agg_type}/{agg_id}\r\nce-aggregatetype: {agg_type}\r\n"
                f"ce-aggregateid: {agg_id}\r\n"
            )
            lines += 3
        else:
            text += f"ce-subject: {agg_id}\r\nce-aggregateid: {agg_id}\r\n"
            lines += 2
    if e.tenant_id is not None:
        text += f"ce-tenantid: {e.tenant_id}\r\n"
        lines += 1
    if e.partition_key is not None:
        text += f"ce-partitionkey: {e.partition_key}\r\n"
        lines += 1
    if e.user_id is not None:
        text += f"ce-userid: {e.user_id}\r\n"
        lines += 1
    if e.correlation_id is not None:
        text += f"ce-correlationid: {e.correlation_id}\r\n"
        lines += 1
    if e.causation_id is not None:
        text += f"ce-causationid: {e.causation_id}\r\n"
        lines += 1
    if e.traceparent is not None:
        text += f"ce-traceparent: {e.traceparent}\r\n"
        lines += 1
    text += "\r\n"
    if (
        not text.isascii()
        or "%" in text
        or text.count("\n") != lines + 1
        or text.count("\r") != lines + 1
    ):
        return reference_header_block(event).decode()
    return text


def reference_header_block(event: Event) -> bytes:
    """:func:`header_block` written plainly from :meth:`Event.cloudevent_attributes`."""
    return "".join(
        ["NATS/1.0\r\n", *(f"{k}: {v}\r\n" for k, v in header_dict(event).items()), "\r\n"]
    ).encode()


def header_dict(event: Event) -> dict[str, str]:
    """The same headers as :func:`header_block`, for nats-py's ``publish(headers=...)``."""
    headers = {MSG_ID_HEADER: str(event.id)}
    for k, v in event.cloudevent_attributes().items():
        headers[CE_PREFIX + k] = encode_value(v)
    return headers


def encode_value(value: str) -> str:
    """Percent-encode what a NATS header value cannot carry as is; readers apply
    :func:`decode_value` (``urllib.parse.unquote``)."""
    if value.isascii() and "%" not in value and "\r" not in value and "\n" not in value:
        return value
    return quote(value, safe=_SAFE)


def decode_value(value: str) -> str:
    return unquote(value)


def hpub_frame(subject: str, reply: str, headers: bytes, data: bytes) -> bytes:
    hlen = len(headers)
    return b"".join(
        (
            f"HPUB {subject} {reply} {hlen} {hlen + len(data)}\r\n".encode(),
            headers,
            data,
            b"\r\n",
        )
    )


@dataclass(frozen=True, slots=True)
class AckResult:
    ok: bool
    duplicate: bool = False
    error: str | None = None
    retryable: bool = True
    no_responders: bool = False  # no stream took the message: none listens, or none leads


ACK_OK = AckResult(ok=True)


def no_stream_error(subject: str) -> str:
    return (
        f"no JetStream stream listens on subject {subject!r}; create one "
        "(JetStreamSink.ensure_stream) or fix the subject template"
    )


def parse_ack(data: bytes, status: str | None, subject: str) -> AckResult:
    """Read a JetStream PubAck (or error) sent to a publish's reply subject.

    ``{"stream":"S","seq":1}`` and ``{..., "duplicate": true}`` are both OK: a duplicate was
    already stored. ``{"error": {"code": 503, ...}}`` is a refusal; 5xx codes (stream limits,
    storage) are worth retrying, 4xx ones (message too large, bad request) are not. A bare
    ``503`` status means no stream took the message: none listens on the subject, or (in a
    cluster) the one that does has no leader right now; the caller tells them apart.
    """
    if status == "503" and not data:
        return AckResult(ok=False, error=no_stream_error(subject), no_responders=True)
    if b'"error"' not in data:
        if b'"stream"' in data:
            return AckResult(ok=True, duplicate=b'"duplicate"' in data)
        return AckResult(ok=False, error=f"unexpected JetStream reply {data[:200]!r}")
    try:
        err = orjson.loads(data)["error"]
        code = int(err.get("code", 500))
        text = (
            f"JetStream refused the event: {err.get('description', 'unknown error')} "
            f"(code {code}, err_code {err.get('err_code')})"
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return AckResult(ok=False, error=f"unreadable JetStream reply {data[:200]!r}")
    return AckResult(ok=False, error=text, retryable=code >= 500)
