"""Addresses of the real services the suite uses, and a check that fails loudly when one is down."""

from __future__ import annotations

import os
import socket

PG_ADMIN_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TETHER_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TETHER_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("TETHER_TEST_NATS", "nats://127.0.0.1:4222")

PORTS = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672, "nats": 4222}

START_COMMANDS = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start",
    "redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    "rabbitmq": "rabbitmq-server -detached",
    "nats": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- "
    "-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log",
}


def answers(service: str, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", PORTS[service]), timeout=timeout):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    """Fail (never skip) when a service the test needs is not answering."""
    if not answers(service):
        import pytest

        pytest.fail(
            f"{service} is not answering on 127.0.0.1:{PORTS[service]}; "
            f"start it with: {START_COMMANDS[service]}",
            pytrace=False,
        )
