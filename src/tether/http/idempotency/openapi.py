"""The Idempotency-Key header and the middleware's own answers, in the OpenAPI document.

policy = IdempotencyPolicy(routes=(RouteRule("/matches", Mode.REQUIRED),))
app.add_middleware(IdempotencyMiddleware, store=store, policy=policy)
document(app, policy)  # every operation the policy covers declares the header and answers
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.http import openapi, problem
from tether.http.idempotency.keys import BARE_KEY_PATTERN, MAX_KEY_LENGTH, QUOTED_KEY_PATTERN
from tether.http.idempotency.policy import IdempotencyPolicy, Mode

if TYPE_CHECKING:
    from fastapi import FastAPI

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_ANSWERS: tuple[tuple[int, dict[str, Any]], ...] = (
    (400, problem.openapi_response("Idempotency-Key missing where required, malformed, or twice")),
    (409, problem.openapi_response("A request with this key is in flight", _RETRY_AFTER)),
    (413, problem.openapi_response("Keyed request body over the buffered maximum")),
    (422, problem.openapi_response("Idempotency-Key already used with a different request")),
    (503, problem.openapi_response("Idempotency store unreachable; retry later", _RETRY_AFTER)),
)


def document(app: FastAPI, policy: IdempotencyPolicy) -> None:
    """Declare the header and the answers on the app's operations that ``policy`` covers."""
    openapi.extend(app, lambda doc: describe(doc, policy))


def describe(doc: openapi.Document, policy: IdempotencyPolicy) -> None:
    for path, method, operation in openapi.operations(doc):
        mode, _ = policy.mode_for(method, path)
        if mode is Mode.OFF:
            continue
        openapi.add_parameter(operation, _parameter(policy, required=mode is Mode.REQUIRED))
        for status, response in _ANSWERS:
            openapi.add_response(operation, status, response)


def _parameter(policy: IdempotencyPolicy, *, required: bool) -> dict[str, Any]:
    return {
        "name": openapi.header_name(policy.header),
        "in": "header",
        "required": required,
        "description": f"A unique key per logical request, 1-{MAX_KEY_LENGTH} printable ASCII "
        "characters: a bare token or a quoted sf-string. A retry with the same key and request "
        "is answered with the stored response (Idempotent-Replayed: true).",
        "schema": {
            "anyOf": [
                {"type": "string", "pattern": BARE_KEY_PATTERN},
                {"type": "string", "pattern": QUOTED_KEY_PATTERN},
            ]
        },
    }
