"""The Centrifuge client protocol, JSON flavour: commands in, replies and pushes out.

What the ``centrifuge`` SDKs (JavaScript, Python, ...) speak, so they connect unchanged. One
WebSocket text message holds one or more JSON objects separated by newlines, both ways. A
command has an ``id`` (the reply repeats it) and one method field (``connect``,
``subscribe``, ...); an empty object is the client's pong. The server pushes publications
(``{"push": {"channel": ..., "pub": {...}}}``), unsubscribes and pings (an empty object).
A disconnect is a WebSocket close whose code and reason are below: 3000-3499 let the client
reconnect, 3500-3999 tell it not to. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

PING = b"{}"
METHODS = frozenset(
    {
        "connect",
        "subscribe",
        "unsubscribe",
        "publish",
        "presence",
        "presence_stats",
        "history",
        "rpc",
        "refresh",
        "sub_refresh",
        "send",
    }
)


class ErrorCode(IntEnum):
    """Error codes of command replies (``{"id": n, "error": {"code": ..., "message": ...}}``)."""

    INTERNAL = 100
    UNAUTHORIZED = 101
    UNKNOWN_CHANNEL = 102
    PERMISSION_DENIED = 103
    METHOD_NOT_FOUND = 104
    ALREADY_SUBSCRIBED = 105
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    NOT_AVAILABLE = 108
    TOKEN_EXPIRED = 109


TEMPORARY = frozenset({ErrorCode.INTERNAL})


class Disconnect(IntEnum):
    """WebSocket close codes. Below 3500 the SDKs reconnect; from 3500 on they stop."""

    SHUTDOWN = 3001
    INTERNAL = 3004
    EXPIRED = 3005
    SLOW = 3008
    INSUFFICIENT_STATE = 3010
    NO_PONG = 3012
    INVALID_TOKEN = 3500
    BAD_REQUEST = 3501
    STALE = 3502
    CONNECTION_LIMIT = 3504


REASONS = {
    Disconnect.SHUTDOWN: "shutdown",
    Disconnect.INTERNAL: "internal server error",
    Disconnect.EXPIRED: "connection expired",
    Disconnect.SLOW: "slow",
    Disconnect.INSUFFICIENT_STATE: "insufficient state",
    Disconnect.NO_PONG: "no pong",
    Disconnect.INVALID_TOKEN: "invalid token",
    Disconnect.BAD_REQUEST: "bad request",
    Disconnect.STALE: "stale",
    Disconnect.CONNECTION_LIMIT: "connection limit",
}


class Unsubscribe(IntEnum):
    """Codes of an unsubscribe push: below 2500 final, from 2500 on the client resubscribes."""

    SERVER = 2000
    INSUFFICIENT = 2500


class BadFrame(ValueError):
    """The client sent something that is not a command; the connection closes with 3501."""


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    method: str | None  # None: a pong (an empty object)
    params: dict[str, Any]


def parse(frame: str | bytes, *, max_commands: int) -> list[Command]:
    """The commands of one WebSocket message; :class:`BadFrame` naming the first problem."""
    raw = frame.encode() if isinstance(frame, str) else frame
    lines = [line for line in raw.split(b"\n") if line.strip()]
    if not lines:
        raise BadFrame("empty message")
    if len(lines) > max_commands:
        raise BadFrame(f"{len(lines)} commands in one message; at most {max_commands}")
    return [_command(line) for line in lines]


def _command(line: bytes) -> Command:
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadFrame("a command is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadFrame("a command must be a JSON object")
    cid = body.pop("id", 0)
    if not isinstance(cid, int) or isinstance(cid, bool) or cid < 0 or cid > 2**32:
        raise BadFrame("id must be a non-negative integer")
    if not body:
        return Command(cid, None, {})
    if len(body) != 1:
        raise BadFrame(f"a command names one method, not {sorted(body)[:5]}")
    method, params = next(iter(body.items()))
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadFrame(f"the parameters of {str(method)[:32]!r} must be a JSON object")
    if cid == 0 and method != "send":
        raise BadFrame(f"command {str(method)[:32]!r} has no id")
    return Command(cid, str(method), params)


def reply(cid: int, method: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": cid, method: result})


def error(cid: int, code: ErrorCode, message: str | None = None) -> bytes:
    body: dict[str, Any] = {"code": int(code), "message": message or _default(code)}
    if code in TEMPORARY:
        body["temporary"] = True
    return orjson.dumps({"id": cid, "error": body})


def _default(code: ErrorCode) -> str:
    return code.name.lower().replace("_", " ")


def publication(channel: str, pub: bytes) -> bytes:
    """A publication push; ``pub`` is the encoded publication object (offset included)."""
    return b'{"push":{"channel":' + orjson.dumps(channel) + b',"pub":' + pub + b"}}"


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, unfragmented, uncompressed WebSocket text frame (RFC 6455
    section 5.2), as a server sends it. Built once per publication, written to every
    subscriber's socket as is (RFC 7692 lets a deflate connection carry uncompressed frames)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = b"\x81\x7e" + size.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + size.to_bytes(8, "big")
    return head + payload


def unsubscribe_push(channel: str, code: Unsubscribe, reason: str) -> bytes:
    return orjson.dumps(
        {"push": {"channel": channel, "unsubscribe": {"code": int(code), "reason": reason}}}
    )


def with_offset(body: bytes, offset: int) -> bytes:
    """``body`` (a publication object without offset) with ``offset`` set, unless it is 0."""
    if offset <= 0:
        return body
    if body == b"{}":
        return b'{"offset":%d}' % offset
    return b'{"offset":%d,' % offset + body[1:]


def publication_body(data: bytes, tags: dict[str, str] | None = None) -> bytes:
    """A publication object (no offset yet) around ``data``, already-encoded JSON."""
    if not tags:
        return b'{"data":' + data + b"}"
    return b'{"data":' + data + b',"tags":' + orjson.dumps(tags) + b"}"
