"""CLI tests: Typer's CliRunner against a fresh PostgreSQL database (or a SQLite file)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from tether.cli import app
from tether.outbox import add_event


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must come from each test alone, not from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("TETHER_") and not name.startswith("TETHER_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(
    runner: CliRunner, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    return runner.invoke(app, list(args), env=env, input=input, catch_exceptions=False)


async def _seed(dsn: str, n: int, dead: set[int]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    ids = []
    try:
        async with conn.transaction():
            for i in range(n):
                ref = await add_event(
                    conn,
                    "OrderPlaced" if i % 2 == 0 else "OrderPaid",
                    {"order": i},
                    aggregate_type="order",
                    aggregate_id=f"o{i}",
                    tenant_id="acme" if i < n // 2 else "globex",
                )
                ids.append(str(ref.id))
        if dead:
            await conn.execute(
                "UPDATE tether_outbox SET state = 'dead', finished_at = now(), attempts = 3, "
                "last_error = 'HTTP 503 from billing [upstream]', "
                "errors = jsonb_build_array(jsonb_build_object('at', now(), 'attempt', 3, "
                "'error', 'HTTP 503 from billing [upstream]')) WHERE id = ANY($1::uuid[])",
                [ids[i] for i in dead],
            )
    finally:
        await conn.close()
    return ids


def seed(dsn: str, n: int = 6, dead: set[int] | None = None) -> list[str]:
    """Write ``n`` events in one transaction; mark the indexes in ``dead`` dead-lettered."""
    return asyncio.run(_seed(dsn, n, dead or set()))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
