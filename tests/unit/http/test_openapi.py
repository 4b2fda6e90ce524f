"""The HTTP edge declares its own answers in a FastAPI app's OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

from tether.http.idempotency import IdempotencyPolicy, Mode, RouteRule, openapi
from tether.http.idempotency.keys import InvalidKeyError, parse_key
from tether.http.ratelimit import FailureMode, MemoryRateLimitStore, RateLimiter
from tether.http.ratelimit import openapi as ratelimit_openapi

PROBLEM = "application/problem+json"


def build() -> FastAPI:
    app = FastAPI()

    @app.post("/payments", responses={422: {"description": "Bad body"}})
    async def pay(amount: int) -> dict[str, int]:
        return {"amount": amount}

    @app.patch("/payments/{payment_id}")
    async def amend(payment_id: int) -> dict[str, int]:
        return {"id": payment_id}

    @app.get("/payments")
    async def listing() -> list[int]:
        return []

    return app


def operation(app: FastAPI, path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = app.openapi()["paths"][path][method]
    return found


def key_header(op: dict[str, Any]) -> dict[str, Any] | None:
    found = [p for p in op.get("parameters", []) if p["in"] == "header"]
    assert len(found) <= 1
    return found[0] if found else None


def test_idempotency_declares_the_header_and_answers_where_the_policy_applies() -> None:
    app = build()
    policy = IdempotencyPolicy(routes=(RouteRule("/payments", Mode.REQUIRED),))
    openapi.document(app, policy)
    pay, amend = (
        operation(app, "/payments", "post"),
        operation(app, "/payments/{payment_id}", "patch"),
    )
    assert key_header(pay) is not None and key_header(pay)["required"] is True  # type: ignore[index]
    assert key_header(amend) is not None and key_header(amend)["required"] is False  # type: ignore[index]
    assert key_header(operation(app, "/payments", "get")) is None
    for status in ("400", "409", "413", "422", "503"):
        assert PROBLEM in pay["responses"][status]["content"], status
    # A status the route declared keeps its description and gains the problem body.
    assert pay["responses"]["422"]["description"] == "Bad body"
    assert "Retry-After" in pay["responses"]["409"]["headers"]


def test_the_document_is_annotated_once() -> None:
    app = build()
    openapi.document(app, IdempotencyPolicy())
    first = app.openapi()
    assert app.openapi() is first
    assert len(operation(app, "/payments", "post")["parameters"]) == 2  # amount, Idempotency-Key


@pytest.mark.parametrize("mode", [FailureMode.OPEN, FailureMode.CLOSED])
def test_rate_limits_declare_429_everywhere_and_503_when_fail_closed(mode: FailureMode) -> None:
    app = build()
    limiter = RateLimiter(MemoryRateLimitStore(), on_store_error=mode)
    ratelimit_openapi.document(app, limiter)
    for path, method in [("/payments", "post"), ("/payments", "get")]:
        declared = operation(app, path, method)["responses"]
        assert declared["429"]["content"]["application/json"]["schema"]["required"] == [
            "error", "message", "retryAfter",
        ]  # fmt: skip
        assert ("503" in declared) is (mode is FailureMode.CLOSED)


def test_the_documented_key_forms_parse() -> None:
    app = build()
    openapi.document(app, IdempotencyPolicy())
    schema = key_header(operation(app, "/payments", "post"))["schema"]  # type: ignore[index]
    patterns = [choice["pattern"] for choice in schema["anyOf"]]
    for raw in ["8e03978e-40d5", '"with space and \\"quote\\""']:
        assert any(re.fullmatch(p, raw) for p in patterns)
        parse_key(raw.encode())
    for raw in ["", "bare space", '"unterminated', "k" * 256]:
        assert not any(re.fullmatch(p, raw) for p in patterns)
        with pytest.raises(InvalidKeyError):
            parse_key(raw.encode())
