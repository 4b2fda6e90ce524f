"""Every error the app answers is an RFC 9457 problem document (``application/problem+json``),
like the answers of Tether's middleware, and each is declared in the OpenAPI document.

The validation handler writes back only what the app itself produced (where, what, why), never
the client's input: that can be anything JSON can carry in (``NaN``, a lone surrogate) and
cannot always be carried back out.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from examples.tradedesk.services.errors import DeskError, NotEnoughLeft, NotFound, RuleBroken
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tether.http import problem

PROBLEM = problem.PROBLEM_CONTENT_TYPE.decode()
PROBLEM_CONTENT: dict[str, Any] = {PROBLEM: {"schema": problem.PROBLEM_SCHEMA}}

# OpenAPI responses, for the routers' ``responses=``.
Responses = dict[int | str, dict[str, Any]]
COMMON: Responses = {
    400: problem.openapi_response("The body is not JSON"),
    401: problem.openapi_response("Missing or unknown X-API-Key"),
    422: problem.openapi_response("The request does not match the schema, or breaks a rule"),
}
# The services' refusals (services/errors.py) as HTTP: the message is the problem's detail.
STATUS_OF: dict[type[DeskError], int] = {NotFound: 404, RuleBroken: 422, NotEnoughLeft: 409}

NOT_FOUND: Responses = {404: problem.openapi_response("No such record in the caller's org")}
CONFLICT: Responses = {409: problem.openapi_response("Not enough quantity left")}


def _text(value: object) -> str:
    # Lone surrogates cannot be encoded as UTF-8: show them escaped instead of failing.
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _error(error: Any) -> dict[str, Any]:
    loc = [part if isinstance(part, int) else _text(part) for part in error.get("loc", ())]
    return {"loc": loc, "msg": _text(error.get("msg", "")), "type": _text(error.get("type", ""))}


def _problem(status: int, detail: str, headers: Any = None, **extra: Any) -> Response:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    slug = title.lower().replace(" ", "-")
    body = problem.problem_body(status, slug, title, detail, **extra)
    return Response(body, status, headers=headers, media_type=PROBLEM)


async def validation_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [_error(error) for error in exc.errors()]
    where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors) or "the request"
    return _problem(422, f"invalid: {where}", errors=errors)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _problem(exc.status_code, _text(exc.detail), exc.headers)


async def desk_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeskError)
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 422)
    return _problem(status, _text(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(DeskError, desk_refused)
    app.add_exception_handler(HTTPException, http_error)
