"""The reference app as the Schemathesis run serves it: the database and Redis from the
environment, two organizations on a generous plan, and names unique to the run, so the
rate-limit counters it leaves in Redis are its own."""

from __future__ import annotations

import os
from dataclasses import replace

from examples.tradedesk.app import create_app
from examples.tradedesk.settings import ApiClient, Settings
from fastapi import FastAPI

from tether.http.ratelimit import Limit

KEYS = {"acme": "schemathesis-acme", "globex": "schemathesis-globex"}


def app() -> FastAPI:
    run = os.environ["TRADEDESK_TEST_RUN"]
    clients = {key: ApiClient(org, f"{org}-trader-{run}", "api_key") for org, key in KEYS.items()}
    settings = replace(
        Settings.from_env(), api_keys=clients, per_ip_limit=Limit(f"ip-{run}", 100_000, 60)
    )
    return create_app(settings)
