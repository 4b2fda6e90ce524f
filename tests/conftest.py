"""Fixtures every tier can use. Services are real; a missing one fails the test, never skips it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import pytest

# schemathesis's pytest plugin imports its report writers at the end of every session. pytest
# rewrites a plugin's modules as they are imported, and on Python 3.11.7 parsing them that late
# sometimes dies with "SystemError: AST constructor recursion depth mismatch", failing a tier
# whose tests all passed. Importing them here, at the start, leaves nothing to parse at the end;
# the Allure writer needs a package not installed, so it is marked absent, which the plugin
# reads as "no Allure" (it catches the ImportError).
import schemathesis.reporting.html.writer
import schemathesis.reporting.junitxml  # noqa: F401
from hypothesis import settings as hypothesis_settings

from tests.support import moto_server, pg, services

if importlib.util.find_spec("allure_commons") is None:
    sys.modules.setdefault("schemathesis.reporting.allure", None)  # type: ignore[arg-type]

# Property tests check properties, not speed: on a loaded 2-core machine a slow example is not a
# failure (hypothesis's default 200 ms deadline made such runs flaky).
hypothesis_settings.register_profile("tether", deadline=None)
hypothesis_settings.load_profile("tether")


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """DSN of a fresh database with Tether's whole schema installed."""
    services.require("postgres")
    with pg.fresh_database() as dsn:
        yield dsn


@pytest.fixture
def empty_pg_dsn() -> Iterator[str]:
    """DSN of a fresh, empty database (for migration tests)."""
    services.require("postgres")
    with pg.fresh_database(template="template0") as dsn:
        yield dsn


@pytest.fixture
def redis_url() -> str:
    services.require("redis")
    return services.REDIS_URL


@pytest.fixture
def nats_url() -> str:
    services.require("nats")
    return services.NATS_URL


@pytest.fixture
def amqp_url() -> str:
    services.require("rabbitmq")
    return services.AMQP_URL


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """moto's server, the stand-in for Amazon SQS: one per session, on a free loopback port."""
    with moto_server.running_moto() as url:
        yield url
