"""``tether webhooks`` against a real database: endpoints, the log, errors with exit codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tether.cli import app

runner = CliRunner()


def tw(dsn: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["webhooks", *args, "--database-url", dsn])
    return result.exit_code, result.output


def test_endpoints_from_the_command_line(pg_dsn: str) -> None:
    code, out = tw(pg_dsn, "endpoints", "add", "http://127.0.0.1:9/hook", "--tenant", "acme",
                   "--filter", "Order*", "--header", "X-Team=red", "--allow", "127.0.0.1",
                   "--json")  # fmt: skip
    assert code == 0, out
    made = json.loads(out)
    assert made["secret"].startswith("whsec_") and made["filters"] == ["Order*"]
    eid = made["id"]
    code, out = tw(pg_dsn, "endpoints", "list", "--tenant", "acme", "--json")
    assert code == 0 and [e["id"] for e in json.loads(out)] == [eid]
    assert made["secret"] not in out
    assert json.loads(tw(pg_dsn, "endpoints", "list", "--tenant", "other", "--json")[1]) == []
    code, out = tw(pg_dsn, "endpoints", "update", eid, "--tenant", "acme", "--disable", "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, out = tw(pg_dsn, "endpoints", "rotate", eid, "--tenant", "acme", "--grace", "1h",
                   "--json")  # fmt: skip
    assert code == 0 and len(json.loads(out)["secrets"]) == 2
    assert tw(pg_dsn, "deliveries", "--tenant", "acme", "--json")[1].strip() == "[]"
    assert tw(pg_dsn, "attempts", "--tenant", "acme", "--json")[1].strip() == "[]"
    # Errors: another tenant's endpoint is not found (1); malformed input is refused (2).
    code, out = tw(pg_dsn, "endpoints", "delete", eid, "--tenant", "other")
    assert code == 1 and "no webhook endpoint" in out
    code, out = tw(pg_dsn, "endpoints", "add", "http://10.0.0.1/", "--tenant", "acme")
    assert code == 2 and "url refused" in out
    code, out = tw(pg_dsn, "endpoints", "add", "https://e.com/", "--header", "Host=x")
    assert code == 2 and "set by the dispatcher" in out
    code, out = tw(pg_dsn, "replay", "not-an-id")
    assert code == 2 and "not an id" in out
    code, out = tw(pg_dsn, "deliveries", "--state", "lost")
    assert code == 2 and "state" in out
    code, out = tw(pg_dsn, "endpoints", "delete", eid, "--tenant", "acme")
    assert code == 0


async def test_run_delivers_until_sigterm_then_settles(pg_dsn: str, redis_url: str) -> None:
    import asyncio
    import signal
    import subprocess
    import sys

    import asyncpg

    from tests.integration.webhooks.conftest import LOOPBACK
    from tests.integration.webhooks.receiver import receiving
    from tether.core.envelope import make_event
    from tether.webhooks.model import EndpointSettings
    from tether.webhooks.secret_box import SecretBox
    from tether.webhooks.sink import WebhooksSink
    from tether.webhooks.store import EndpointStore

    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    proc = None
    try:
        async with receiving() as rx:
            store = EndpointStore(pool, ssrf=LOOPBACK, box=SecretBox(None))
            ep = await store.create(None, EndpointSettings(rx.url()))
            rx.secrets.append(str(ep.secrets.current))
            async with pool.acquire() as conn, conn.transaction():
                await WebhooksSink().publish_in(
                    conn, [make_event("Ping", {"n": n}) for n in range(3)]
                )
            argv = [sys.executable, "-m", "tether.cli", "webhooks", "run", "--database-url",
                    pg_dsn, "--allow", "127.0.0.1", "--redis-url", redis_url]  # fmt: skip
            env = {k: v for k, v in __import__("os").environ.items() if k != "TETHER_SECRET_KEY"}
            proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
            await rx.wait_until(lambda: len(rx.verified) == 3, timeout=30)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(proc.communicate, None, 30)
        assert proc.returncode == 0, err
        assert "stopped: 3 sent" in err
        assert "circuit breakers shared through Redis" in err
        done = "SELECT count(*) FROM tether_webhook_deliveries WHERE state = 'done'"
        assert await pool.fetchval(done) == 3
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        await pool.close()
