"""Declare what the HTTP edge answers in a FastAPI app's OpenAPI document.

The middleware answers some requests itself (400, 409, 429, ...) without the app's routes
knowing; the helpers here add those answers to the generated document, after FastAPI builds
it, so generated clients and contract testers see every answer a route can give.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

Document = dict[str, Any]
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def extend(app: FastAPI, annotate: Callable[[Document], None]) -> None:
    """Run ``annotate`` on the app's OpenAPI document once, when FastAPI first builds it."""
    generate = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            annotate(generate())
        assert app.openapi_schema is not None  # FastAPI caches the document it builds
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    """``(path template, METHOD, operation)`` for every operation in ``document``."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method.upper(), operation


def add_response(operation: Document, status: int, response: Document) -> None:
    """Declare ``response`` under ``status``; a status already declared gains its media types."""
    responses = operation.setdefault("responses", {})
    existing = responses.get(str(status))
    if existing is None:
        responses[str(status)] = copy.deepcopy(response)
        return
    content = existing.setdefault("content", {})
    for media_type, body in response.get("content", {}).items():
        content.setdefault(media_type, copy.deepcopy(body))
    for name, header in response.get("headers", {}).items():
        existing.setdefault("headers", {}).setdefault(name, copy.deepcopy(header))


def add_parameter(operation: Document, parameter: Document) -> None:
    parameters = operation.setdefault("parameters", [])
    place, name = parameter["in"], parameter["name"].lower()
    if not any(p.get("in") == place and p.get("name", "").lower() == name for p in parameters):
        parameters.append(copy.deepcopy(parameter))


def header_name(raw: bytes) -> str:
    """``b"idempotency-key"`` as it is usually written: ``Idempotency-Key``."""
    return "-".join(part.capitalize() for part in raw.decode("latin-1").split("-"))
