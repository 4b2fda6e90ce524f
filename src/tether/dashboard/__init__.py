"""The admin dashboard: dead letters of every kind with replay and purge, health at a glance,
webhook endpoints, jobs and real-time connections (``docs/dashboard.md``).

Mount :func:`create_dashboard` in a Starlette/FastAPI app or serve it with ``tether dashboard``.
It needs the ``dashboard`` extra (Jinja2, itsdangerous, python-multipart) and PostgreSQL.
"""

from tether.dashboard.app import DashboardSettings, create_dashboard
from tether.dashboard.auth import OpsCap, TokenUsers, digest
from tether.dashboard.broker_dlq import ConsumerDlq, parse_consumer_dlqs

__all__ = [
    "ConsumerDlq",
    "DashboardSettings",
    "OpsCap",
    "TokenUsers",
    "create_dashboard",
    "digest",
    "parse_consumer_dlqs",
]
