"""Schemathesis against the reference app's own /openapi.json: generated requests, valid and
invalid, from two organizations, with Idempotency-Keys, get no 5xx and no answer (status,
media type, headers, body) that the schema does not declare.

The app runs under uvicorn on a fresh PostgreSQL database (asyncpg) with Redis rate limits.
Bounded and deterministic: a fixed seed and a few hundred cases in all.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from examples.tradedesk.app import create_app
from examples.tradedesk.settings import Settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contract.http.conftest import async_url
from tests.integration.http.tradedesk_schemathesis_app import KEYS
from tests.support import pg, services
from tether.http.idempotency.keys import InvalidKeyError, parse_key

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.serial]

SEED = 20_251_201
EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "database": "none"},
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
        },
    }
)
ORGS = itertools.cycle(KEYS.values())
ANSWERS: Counter[int] = Counter()  # status -> count, over the whole run
# The document the app serves at /openapi.json, built without a database (checked below).
DOCUMENT = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with {server.returncode} before serving")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the app did not answer /health within 30 s")


@pytest.fixture(scope="module")
def tradedesk_url() -> Iterator[str]:
    services.require("postgres")
    services.require("redis")
    port = free_port()
    with pg.fresh_database(template="template0") as dsn:
        env = {
            **os.environ,
            "TRADEDESK_DATABASE_URL": async_url(dsn),
            "TRADEDESK_REDIS_URL": services.REDIS_URL,
            "TRADEDESK_TEST_RUN": uuid.uuid4().hex[:12],
        }
        command = [
            sys.executable, "-m", "uvicorn", "--factory",
            "tests.integration.http.tradedesk_schemathesis_app:app",
            "--port", str(port), "--no-proxy-headers", "--log-level", "warning",
        ]  # fmt: skip
        server = subprocess.Popen(command, env=env)
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base_url, server)
            yield base_url
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_served_schema_is_the_one_tested(tradedesk_url: str) -> None:
    assert httpx.get(f"{tradedesk_url}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_5xx_or_an_undeclared_answer(
    case: schemathesis.Case, tradedesk_url: str
) -> None:
    headers = {"X-API-Key": next(ORGS)}
    if is_valid_key((case.headers or {}).get("Idempotency-Key")):
        # A valid generated key stays valid, and unique: generated keys repeat across cases.
        headers["Idempotency-Key"] = uuid.uuid4().hex
    response = case.call_and_validate(base_url=tradedesk_url, headers=headers, checks=CHECKS)
    ANSWERS[response.status_code] += 1


def is_valid_key(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_key(value.encode("latin-1"))
    except (InvalidKeyError, UnicodeEncodeError):
        return False
    return True


def test_the_run_above_was_not_vacuous() -> None:
    """Runs after the generated cases (pytest keeps file order): they reached the handlers."""
    print("answers by status:", dict(sorted(ANSWERS.items())))
    assert sum(ANSWERS.values()) >= 200
    assert sum(n for status, n in ANSWERS.items() if status < 300) >= 20
    assert ANSWERS[422] and ANSWERS[404]
