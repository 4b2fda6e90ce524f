"""The reference app's edge: guessed keys are rate-limited, the documented uvicorn command
leaves client addresses to the app, and /openapi.json declares every answer it can give."""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from fastapi import FastAPI
from uvicorn.main import main as uvicorn_command

from tether.http.ratelimit import Limit

ROOT = Path(__file__).resolve().parents[3]
ACME = {"x-api-key": "demo-acme"}
GLOBEX = {"x-api-key": "demo-globex"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'td.db'}", per_ip_limit=Limit("ip", 5, 60)
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_wrong_api_keys_count_against_the_callers_ip(app: FastAPI) -> None:
    async with client_from(app, "198.51.100.7") as guesser, client_from(app, "192.0.2.1") as other:
        codes = [
            (await guesser.get("/partners", headers={"x-api-key": f"guess-{n}"})).status_code
            for n in range(6)
        ]
        # Refused before the key is checked: even the right key from that address waits.
        right_key = await guesser.get("/partners", headers=ACME)
        elsewhere = await other.get("/partners", headers=ACME)
    assert codes == [401] * 5 + [429]
    assert right_key.status_code == 429 and elsewhere.status_code == 200


async def test_policies_of_one_plan_have_distinct_names(tmp_path: Path) -> None:
    # Globex's plan is "relaxed", and so is the default per-IP limit.
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'td.db'}"))
    async with app.router.lifespan_context(app), client_from(app, "192.0.2.2") as c:
        answer = await c.get("/partners", headers=GLOBEX)
    policies = answer.headers["ratelimit-policy"].split(", ")
    assert policies == ['"relaxed";q=1000;w=60', '"per-ip";q=1000;w=60']


def documented_uvicorn_commands() -> list[str]:
    texts = [
        p.read_text() for p in [ROOT / "docs" / "http-edge.md", *ROOT.glob("examples/**/*.py")]
    ]
    found = [m for t in texts for m in re.findall(r"uvicorn (examples\.[^`\n]+)", t)]
    assert found, "no documented uvicorn command"
    return found


@pytest.mark.parametrize("command", documented_uvicorn_commands())
def test_documented_uvicorn_command_leaves_forwarded_headers_to_the_app(command: str) -> None:
    context = uvicorn_command.make_context("uvicorn", shlex.split(command))
    assert context.params["proxy_headers"] is False


def operation(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["paths"][path][method]
    return found


async def test_openapi_declares_the_idempotency_key_and_every_answer(app: FastAPI) -> None:
    async with client_from(app, "192.0.2.3") as c:
        doc = (await c.get("/openapi.json")).json()
    match = operation(doc, "/matches", "post")
    headers = {p["name"]: p for p in match["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is True
    assert {"400", "401", "403", "404", "409", "413", "422", "429", "503"} <= set(
        match["responses"]
    )
    assert "application/problem+json" in match["responses"]["422"]["content"]
    assert "Retry-After" in match["responses"]["429"]["headers"]
    partner = operation(doc, "/partners", "post")
    optional = [p for p in partner["parameters"] if p["name"] == "Idempotency-Key"]
    assert [p["required"] for p in optional] == [False]
    listing = operation(doc, "/partners", "get")
    assert not any(p["name"] == "Idempotency-Key" for p in listing.get("parameters", []))
    assert {"401", "403", "429"} <= set(listing["responses"])
    # Every error answer is declared with the body the app sends.
    for item in doc["paths"].values():
        for op in item.values():
            for status, answer in op["responses"].items():
                if status.startswith("4") and status != "429":
                    assert list(answer["content"]) == ["application/problem+json"], (op, status)
