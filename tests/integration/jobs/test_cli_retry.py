"""``tether jobs retry`` of dead jobs whose de-duplication key is taken: a clean refusal that
names the holder (exit 1), the other jobs still retried; and ``tether worker``'s alert
channel flags refused as bad input (exit 2)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from tests.integration.jobs import sample_app
from tether.cli import app
from tether.jobs import Jobs, JobStore, registry
from tether.queue.postgres import create_pool

assert sample_app.quick.name == "sample.quick"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name in list(os.environ):
        if name.startswith("TETHER_") and not name.startswith("TETHER_TEST_"):
            monkeypatch.delenv(name)
    return CliRunner()


def invoke(runner: CliRunner, dsn: str, *args: str) -> Result:
    env = {"TETHER_DATABASE_URL": dsn}
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


async def _dead_with_keys(dsn: str) -> dict[str, str]:
    """Dead jobs: a and b of key k1 (b the later), c of key k2, d without a key; then a live
    job of key k2."""
    pool = await create_pool(dsn, max_size=2)
    try:
        store = JobStore(pool)
        jobs = Jobs(store, registry)
        ids: dict[str, str] = {}
        for label, key in (("a", "k1"), ("b", "k1"), ("c", "k2"), ("d", None)):
            ref = await jobs.enqueue("sample.quick", {"n": 1}, dedup_key=key)
            assert ref.id is not None
            assert await store.cancel(ref.id)  # dead, the key free again
            ids[label] = str(ref.id)
        live = await jobs.enqueue("sample.quick", {"n": 1}, dedup_key="k2")
        ids["live"] = str(live.id)
        return ids
    finally:
        await pool.close()


async def _states(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, state FROM tether_jobs")
        return {str(r["id"]): r["state"] for r in rows}
    finally:
        await conn.close()


def test_retry_refuses_jobs_whose_key_is_taken(jobs_dsn: str, runner: CliRunner) -> None:
    ids = asyncio.run(_dead_with_keys(jobs_dsn))
    result = invoke(runner, jobs_dsn, "jobs", "retry", ids["c"])
    assert result.exit_code == 1, result.output
    assert f"its de-duplication key 'k2' is held by queued or running job {ids['live']}" in (
        result.output
    )
    assert "Traceback" not in result.output and "UniqueViolation" not in result.output

    everything = invoke(runner, jobs_dsn, "jobs", "retry", "--all-dead")
    assert everything.exit_code == 1, everything.output
    assert "retried 2 dead job(s)" in everything.output  # b (the later of k1) and d
    assert f"dead job {ids['b']}, retried instead" in everything.output
    assert "2 dead job(s) left dead" in everything.output
    states = asyncio.run(_states(jobs_dsn))
    assert {k: states[v] for k, v in ids.items()} == {
        "a": "dead", "b": "pending", "c": "dead", "d": "pending", "live": "pending",
    }  # fmt: skip


def test_worker_alert_flags_are_checked(jobs_dsn: str, runner: CliRunner) -> None:
    for args, message in (
        (("--webhook-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "needs --webhook-url"),
        (("--webhook-url", "http://127.0.0.1:1/alerts"), "alert channel 'webhook'"),
    ):
        result = invoke(runner, jobs_dsn, "worker", "--app", "tests.integration.jobs.sample_app",
                        *args)  # fmt: skip
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_python_m_tether_jobs_is_the_worker_command(jobs_dsn: str) -> None:
    # The worker alone, without importing every other command (a faster restart).
    env = {**os.environ, "TETHER_DATABASE_URL": jobs_dsn}
    out = subprocess.run(
        [sys.executable, "-m", "tether.jobs", "--app", "no.such.module"],
        check=False, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "cannot import no.such.module" in out.stderr
