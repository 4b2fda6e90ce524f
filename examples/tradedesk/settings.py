"""What the app is configured with; read from the environment by :meth:`Settings.from_env`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiClient:
    tenant_id: str
    principal: str
    plan: str = "standard"  # a rate-limit preset name


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./tradedesk.db"
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

    @classmethod
    def from_env(cls) -> Settings:
        proxies = os.environ.get("TRADEDESK_TRUSTED_PROXIES", "")
        return cls(
            database_url=os.environ.get("TRADEDESK_DATABASE_URL", cls.database_url),
            redis_url=os.environ.get("TRADEDESK_REDIS_URL") or None,
            trusted_proxies=tuple(p for p in proxies.split(",") if p),
        )
