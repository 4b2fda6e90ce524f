"""Rows in bulk for the plan tests and the benchmark: dead letters and finished rows of every
kind, written with generate_series (test data; the parts' own writes are tested with them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tether.ops.runners import PostgresRunnerRegistry

ENDPOINT = "00000000-0000-4000-8000-00000000e001"

LOAD = """
INSERT INTO tether_webhook_endpoints (id, tenant_id, url, filters, secrets, created_at, updated_at)
SELECT ('00000000-0000-4000-8000-0000000' || lpad(to_hex(57344 + i), 5, '0'))::uuid,
       'tenant-' || (i % 7), 'https://hooks.example/' || i, '{*}', '[]', now(), now()
FROM generate_series(1, 50) i;

INSERT INTO tether_outbox (id, state, attempts, topic, type, tenant_id, payload, last_error,
                           errors, created_at, finished_at)
SELECT gen_random_uuid(), 'dead', 5, 'topic-' || (i % 20), 'Type' || (i % 50),
       'tenant-' || (i % 100), '{"n": 1}', 'broker refused: code ' || (i % 13),
       '[{"at": "2026-01-01T00:00:00+00:00", "attempt": 5, "error": "broker refused"}]',
       now() - make_interval(secs => i), now() - make_interval(secs => i / 2.0)
FROM generate_series(1, $1::int) i;

INSERT INTO tether_outbox (id, state, topic, type, payload, created_at, finished_at)
SELECT gen_random_uuid(), 'done', 'topic', 'Type', '{}', now() - make_interval(secs => i),
       now() - make_interval(secs => i)
FROM generate_series(1, $3::int) i;

INSERT INTO tether_outbox (id, topic, type, payload)
SELECT gen_random_uuid(), 'topic', 'Type', '{}' FROM generate_series(1, 200);

INSERT INTO tether_jobs (id, queue, name, state, attempts, payload, last_error, errors,
                         created_at, finished_at)
SELECT gen_random_uuid(), 'q' || (i % 5), 'job_' || (i % 30), 'done', 1, '{}', NULL, '[]',
       now() - make_interval(secs => i), now() - make_interval(secs => i)
FROM generate_series(1, $2::int) i;

INSERT INTO tether_jobs (id, queue, name, state, attempts, payload, last_error, errors,
                         created_at, finished_at)
SELECT gen_random_uuid(), 'q' || (i % 5), 'job_' || (i % 30), 'dead', 5, '{}',
       'ValueError: bad input ' || (i % 11), '[]',
       now() - make_interval(secs => i), now() - make_interval(secs => i / 2.0)
FROM generate_series(1, $4::int) i;

INSERT INTO tether_jobs (id, queue, name, state, payload)
SELECT gen_random_uuid(), 'q1', 'job', 'pending', '{}' FROM generate_series(1, 100);

INSERT INTO tether_webhook_deliveries (id, queue, state, attempts, available_at, last_error,
    created_at, finished_at, payload, tenant_id, endpoint_id, event_id, event_type)
SELECT gen_random_uuid(), 'medium', CASE WHEN i % 4 = 0 THEN 'dead' ELSE 'done' END, 3, now(),
       CASE WHEN i % 4 = 0 THEN 'HTTP 500' END, now() - make_interval(secs => i),
       now() - make_interval(secs => i), '{}', 'tenant-' || (i % 7),
       ('00000000-0000-4000-8000-0000000' || lpad(to_hex(57344 + 1 + i % 50), 5, '0'))::uuid,
       gen_random_uuid(), 'Type' || (i % 9)
FROM generate_series(1, $4::int) i;

INSERT INTO tether_webhook_attempts (delivery_id, endpoint_id, tenant_id, event_id, attempt, at,
                                     outcome, status_code, latency_ms, response, error)
SELECT gen_random_uuid(),
       ('00000000-0000-4000-8000-0000000' || lpad(to_hex(57344 + 1 + i % 50), 5, '0'))::uuid,
       'tenant-1', gen_random_uuid(), 1, now() - make_interval(secs => i), 'ok', 200, 12.5,
       'ok', NULL
FROM generate_series(1, $4::int) i;

INSERT INTO tether_job_recoveries (day, queue, recovered)
SELECT current_date - i, 'q1', i FROM generate_series(0, 30) i;
"""


async def load(conn: Any, *, dead: int, done: int, outbox_done: int, other: int) -> None:
    """``dead`` dead outbox events, ``done`` finished jobs, ``outbox_done`` published outbox
    events kept, ``other`` dead jobs and deliveries (a quarter dead) and attempts; then
    ANALYZE, so the planner sees the tables as they are."""
    values = {"$1": dead, "$2": done, "$3": outbox_done, "$4": other}
    for statement in LOAD.split(";\n"):
        # Each statement names at most one of the four sizes: bound as its $1.
        named = [p for p in values if p in statement]
        if named:
            await conn.execute(statement.replace(named[0], "$1"), values[named[0]])
        elif statement.strip():
            await conn.execute(statement)
    # VACUUM as autovacuum would have: the visibility map lets counts read the index alone.
    await conn.execute("VACUUM ANALYZE")


# The registry as a deployment leaves it: ``$1`` runners of every kind (one in ten lost, one in
# ten stopped) beating every ``$3`` seconds for ``$2`` hours, counters growing by the beat.
RUNNERS = """
INSERT INTO tether_runners (id, kind, name, host, pid, started_at, heartbeat_at, interval_s,
                            stopped_at, stats)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(r), 12, '0'))::uuid,
       (ARRAY['relay', 'job-worker', 'webhook-dispatcher', 'realtime-gateway',
              'consumer'])[1 + r % 5],
       'runner-' || r, 'host-' || (r % 4), 1000 + r, now() - make_interval(hours => $2::int),
       CASE WHEN r % 10 = 3 THEN now() - interval '2 hours' ELSE now() END, $3::int,
       CASE WHEN r % 10 = 7 THEN now() - interval '1 hour' END,
       jsonb_build_object('published_total', 1000, 'done_total', 1000, 'lag_s', 0.5)
FROM generate_series(1, $1::int) r
"""

BEATS = """
INSERT INTO tether_runner_beats (runner_id, at, stats)
SELECT r.id, now() - make_interval(secs => b * $2::int),
       CASE r.kind
         WHEN 'relay' THEN jsonb_build_object('published_total', 100000 - b * 3,
              'failed_total', 500 - b / 100, 'dead_total', 100 - b / 1000, 'lag_s', b % 7 / 10.0)
         WHEN 'job-worker' THEN jsonb_build_object('done_total', 100000 - b * 2,
              'failed_total', 500 - b / 100, 'dead_total', 100 - b / 1000, 'rescued_total', 3,
              'in_flight', b % 5)
         WHEN 'webhook-dispatcher' THEN jsonb_build_object('delivered_total', 100000 - b,
              'failed_total', 500 - b / 100, 'dead_total', 100 - b / 1000, 'in_flight', b % 3)
         WHEN 'realtime-gateway' THEN jsonb_build_object('connections', 100 + b % 50,
              'channels', 40, 'messages_total', 1000000 - b * 20, 'disconnects_total', 50)
         ELSE jsonb_build_object('handled_total', 100000 - b, 'retried_total', 30,
              'dead_total', 10)
       END
FROM tether_runners r, generate_series(0, $1::int * 3600 / $2::int) b
WHERE now() - make_interval(secs => b * $2::int) <= r.heartbeat_at
"""


async def load_runners(conn: Any, *, runners: int, hours: int, every_s: int) -> int:
    """The registry of ``runners`` runners with ``hours`` of beats every ``every_s`` seconds,
    and the per-minute rows the 6 h and 24 h charts read (which beat() keeps up, and these
    beats went around); then ANALYZE. Returns how many beats were written."""
    await conn.execute(RUNNERS, runners, hours, every_s)
    await conn.execute(BEATS, hours, every_s)
    since = datetime.now(UTC) - timedelta(hours=hours, minutes=1)
    await PostgresRunnerRegistry(_OneConnection(conn)).rebuild_minutes(since)
    await conn.execute("ANALYZE tether_runners, tether_runner_beats, tether_runner_minutes")
    return int(await conn.fetchval("SELECT count(*) FROM tether_runner_beats"))


class _OneConnection:
    """A pool of the one connection the loader holds, as the registry asks for a pool."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        yield self._conn
