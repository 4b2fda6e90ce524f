"""``tether worker`` as a process (SIGTERM: finish, then release with no attempt spent) and
``tether jobs`` list/show/retry/cancel/purge/recoveries, with their bad-input errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from tests.integration.jobs import sample_app
from tether.cli import app
from tether.jobs import Jobs, JobStore, registry
from tether.queue.postgres import create_pool

assert sample_app.quick.name == "sample.quick"  # registered in the default registry


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name in list(os.environ):
        if name.startswith("TETHER_") and not name.startswith("TETHER_TEST_"):
            monkeypatch.delenv(name)
    return CliRunner()


def invoke(runner: CliRunner, dsn: str, *args: str, input: str | None = None) -> Result:
    env = {"TETHER_DATABASE_URL": dsn}
    return runner.invoke(app, list(args), env=env, input=input, catch_exceptions=False)


async def _enqueue(dsn: str, *calls: tuple[str, dict[str, object]]) -> list[str]:
    pool = await create_pool(dsn, max_size=2)
    try:
        jobs = Jobs(JobStore(pool), registry)
        return [str((await jobs.enqueue(name, args)).id) for name, args in calls]
    finally:
        await pool.close()


async def _fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_worker_process_stops_on_sigterm_and_releases_its_job(jobs_dsn: str) -> None:
    quick, slow = asyncio.run(
        _enqueue(jobs_dsn, ("sample.quick", {"n": 21}), ("sample.slow", {"seconds": 60}))
    )
    env = {**os.environ, "TETHER_DATABASE_URL": jobs_dsn}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker", "--app", "tests.integration.jobs.sample_app",
         "--grace", "1", "--log-level", "warning"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            rows = asyncio.run(_fetch(jobs_dsn, "SELECT name, state FROM tether_jobs"))
            states = {r["name"]: r["state"] for r in rows}
            if states == {"sample.quick": "done", "sample.slow": "claimed"}:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "1 released" in err and "1 done" in err
    row = asyncio.run(_fetch(jobs_dsn, "SELECT * FROM tether_jobs WHERE id = $1::uuid", slow))[0]
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "pending",
        0,
        "released: its worker shut down",
    )
    assert quick


def test_jobs_commands(jobs_dsn: str, runner: CliRunner) -> None:
    quick, broken, slow = asyncio.run(
        _enqueue(jobs_dsn, ("sample.quick", {"n": 1}), ("sample.broken", {}),
                 ("sample.slow", {"seconds": 1}))
    )  # fmt: skip
    asyncio.run(_fetch(
        jobs_dsn,
        "UPDATE tether_jobs SET state = 'dead', attempts = 1, last_error = 'RuntimeError: x', "
        "finished_at = now() WHERE id = $1::uuid", broken,
    ))  # fmt: skip
    listed = invoke(runner, jobs_dsn, "jobs", "list", "--json")
    assert listed.exit_code == 0
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == [
        "sample.quick",
        "sample.broken",
        "sample.slow",
    ]
    dead = invoke(runner, jobs_dsn, "jobs", "list", "--state", "dead")
    assert "sample.broken" in dead.stdout and "sample.quick" not in dead.stdout
    shown = invoke(runner, jobs_dsn, "jobs", "show", broken, "--json")
    assert json.loads(shown.stdout)["last_error"] == "RuntimeError: x"
    assert "RuntimeError: x" in invoke(runner, jobs_dsn, "jobs", "show", broken).stdout
    assert (
        invoke(runner, jobs_dsn, "jobs", "retry", broken).stdout.strip() == "retried 1 dead job(s)"
    )
    assert invoke(runner, jobs_dsn, "jobs", "cancel", slow).exit_code == 0
    again = invoke(runner, jobs_dsn, "jobs", "cancel", slow)
    assert again.exit_code == 1 and "not queued or running" in again.output
    purged = invoke(runner, jobs_dsn, "jobs", "purge", "--yes")
    assert purged.stdout.strip() == "purged 1 job(s)"
    assert "no recovered jobs" in invoke(runner, jobs_dsn, "jobs", "recoveries").stdout
    for args, message in (
        (("jobs", "show", "nope"), "not a job id"),
        (("jobs", "list", "--state", "sleeping"), "use pending, claimed, done or dead"),
        (("jobs", "purge", "--state", "pending", "--yes"), "dead or done jobs only"),
        (("jobs", "purge", "--older-than", "soon", "--yes"), "use an age"),
        (("jobs", "retry"), "give job ids or --all-dead"),
        (("worker", "--app", "no.such.module"), "cannot import no.such.module"),
        (("worker", "--app", "json", "--queue", "a=x"), "expected a queue name"),
        (("worker", "--app", "json:loads"), "loads is not a JobRegistry in json"),
    ):
        result = invoke(runner, jobs_dsn, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    sqlite = runner.invoke(app, ["jobs", "list"], env={"TETHER_DATABASE_URL": "sqlite:///x.db"})
    assert sqlite.exit_code == 2 and "needs PostgreSQL" in sqlite.output
    assert quick
