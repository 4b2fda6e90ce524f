"""Fixtures every tier can use. Services are real; a missing one fails the test, never skips it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import moto_server, pg, services


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
