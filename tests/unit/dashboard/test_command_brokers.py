"""``tether dashboard --webhooks-redis-url`` and ``--consumer-dlqs``: checked at start, bad
ones exit 2 naming the flag or the file's line, passwords never echoed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tether.cli import app

DB = "postgresql://postgres@127.0.0.1:5432/test"
ENV = {"TETHER_CONFIG": "", "TETHER_DASHBOARD_SECRET": "s" * 40}


def run(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["dashboard", "--db", DB, *args, "--check"], env={**ENV, **env}
    )
    return result.exit_code, result.output


def test_consumers_and_the_dispatchers_redis_are_checked(tmp_path: Path) -> None:
    consumers = tmp_path / "consumers"
    consumers.write_text(
        "# broker url source consumer\n"
        "redis redis://:hunter2@127.0.0.1:6379/0 orders billing\n"
        "nats nats://127.0.0.1:4222 ORDERS billing\n"
    )
    # The dispatchers' variable, shared with tether webhooks run --redis-url.
    code, out = run(
        "--consumer-dlqs", str(consumers),
        TETHER_WEBHOOKS_REDIS_URL="redis://:hunter2@127.0.0.1:6379/0",
    )  # fmt: skip
    assert code == 0, out
    assert "2 consumer(s)" in out and "live from Redis at redis://:***@127.0.0.1:6379/0" in out
    assert "hunter2" not in out
    code, out = run()
    assert code == 0 and "as the delivery table records them" in out, out


def test_bad_consumers_files_and_redis_urls_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "consumers"
    bad.write_text("kafka kafka://u:hunter2@k:9092 orders billing\n")
    code, out = run("--consumer-dlqs", str(bad))
    assert code == 2 and "line 1: broker 'kafka': use one of nats, rabbitmq, redis" in out, out
    assert "hunter2" not in out
    bad.write_text("redis redis://x orders\n")
    code, out = run("--consumer-dlqs", str(bad))
    assert code == 2 and "line 1: expected '<broker> <url> <source> <consumer>'" in out, out
    code, out = run("--consumer-dlqs", str(tmp_path / "missing"))
    assert code == 2 and "--consumer-dlqs" in out, out
    code, out = run("--webhooks-redis-url", "http://u:hunter2@cache:6379")
    assert code == 2 and "--webhooks-redis-url" in out and "use redis://" in out, out
    assert "hunter2" not in out
