"""tether_http_responses_total: one count per response, by status class and method."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tether.http.status_metrics import ResponseStatusMetrics, status_class


def count(status_class: str, method: str) -> float:
    value = REGISTRY.get_sample_value(
        "tether_http_responses_total", {"status_class": status_class, "method": method}
    )
    return value or 0.0


async def answer(request: Request) -> PlainTextResponse:
    code = int(request.path_params["code"])
    if code == 0:
        raise RuntimeError("the handler crashed")
    return PlainTextResponse("x", status_code=code)


APP = ResponseStatusMetrics(
    Starlette(routes=[Route("/{code:int}", answer, methods=["GET", "POST"])])
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "2xx"),
        (204, "2xx"),
        (302, "3xx"),
        (404, "4xx"),
        (429, "429"),
        (503, "5xx"),
        (99, "1xx"),
        (700, "5xx"),
    ],
)
def test_status_classes(status: int, expected: str) -> None:
    assert status_class(status) == expected


async def test_counts_each_response_once_and_a_crash_as_5xx() -> None:
    before = {
        k: count(*k) for k in [("2xx", "GET"), ("429", "POST"), ("5xx", "GET"), ("4xx", "other")]
    }
    transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        assert (await client.get("/200")).status_code == 200
        assert (await client.post("/429")).status_code == 429
        assert (await client.get("/0")).status_code == 500  # raised, no response started
        assert (await client.request("BREW", "/200")).status_code == 405  # odd method: "other"
    assert count("2xx", "GET") - before[("2xx", "GET")] == 1
    assert count("429", "POST") - before[("429", "POST")] == 1
    assert count("5xx", "GET") - before[("5xx", "GET")] == 1
    assert count("4xx", "other") - before[("4xx", "other")] == 1
