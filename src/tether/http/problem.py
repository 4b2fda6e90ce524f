"""RFC 9457 problem details, sent straight over ASGI (no framework needed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.types import Send

PROBLEM_CONTENT_TYPE = b"application/problem+json"
_TYPE_BASE = "https://tether.dev/problems/"

# The body every problem answer has, as an OpenAPI (JSON Schema) object. ``errors`` lists the
# fields a validation problem found; other problems leave it out.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def openapi_response(
    description: str, headers: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An OpenAPI response object for a problem answer (``headers``: name -> header object)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE.decode(): {"schema": PROBLEM_SCHEMA}},
    }
    if headers:
        response["headers"] = dict(headers)
    return response


def problem_body(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    """The JSON body; ``extra`` members (such as a validation problem's ``errors``) follow."""
    return orjson.dumps(
        {"type": _TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    )


async def send_problem(
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    body = problem_body(status, slug, title, detail)
    await send_bytes(send, status, body, PROBLEM_CONTENT_TYPE, headers)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    raw = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
