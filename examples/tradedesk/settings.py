"""What the app is configured with; read from the environment by :meth:`Settings.from_env`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tether.http.ratelimit import RELAXED, Limit


@dataclass(frozen=True)
class ApiClient:
    tenant_id: str
    principal: str
    plan: str = "standard"  # a rate-limit preset name


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./tradedesk.db"
    # "transaction" when database_url leads to a transaction-mode pooler (PgBouncer, Supabase).
    database_pooler: str = "none"
    redis_url: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    # Demo credentials: X-API-Key -> who is calling. A real app looks keys up in its database.
    api_keys: dict[str, ApiClient] = field(
        default_factory=lambda: {
            "demo-acme": ApiClient("acme", "alice", "standard"),
            "demo-globex": ApiClient("globex", "bob", "relaxed"),
        }
    )
    fail_closed: bool = False
    # Every request from one client IP, counted before its API key is checked.
    per_ip_limit: Limit = RELAXED

    @classmethod
    def from_env(cls) -> Settings:
        proxies = os.environ.get("TRADEDESK_TRUSTED_PROXIES", "")
        return cls(
            database_url=os.environ.get("TRADEDESK_DATABASE_URL", cls.database_url),
            database_pooler=os.environ.get("TRADEDESK_DATABASE_POOLER", cls.database_pooler),
            redis_url=os.environ.get("TRADEDESK_REDIS_URL") or None,
            trusted_proxies=tuple(p for p in proxies.split(",") if p),
        )
