-- Background jobs (tether.jobs): the work-item engine's core columns plus what a job needs:
-- the function's name, a priority, a per-job timeout, a de-duplication key, the last
-- heartbeat and the result. While claimed, available_at is the lease expiry, which every
-- heartbeat pushes forward: a job whose worker stopped beating is found by the
-- tether_jobs_stale index and requeued (stale-job recovery is lease expiry).
CREATE TABLE tether_jobs (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    queue           text        NOT NULL,
    name            text        NOT NULL,
    partition_key   text,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    priority        integer     NOT NULL DEFAULT 0,
    attempts        integer     NOT NULL DEFAULT 0,
    max_attempts    integer,
    available_at    timestamptz NOT NULL DEFAULT now(),
    timeout_s       double precision,
    dedup_key       text,
    lease_token     uuid,
    worker          text,
    heartbeat_at    timestamptz,
    last_error      text,
    errors          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    payload         jsonb       NOT NULL
);
CREATE INDEX tether_jobs_ready ON tether_jobs (queue, priority DESC, seq) WHERE state = 'pending';
CREATE INDEX tether_jobs_stale ON tether_jobs (available_at) WHERE state = 'claimed';
CREATE UNIQUE INDEX tether_jobs_dedup ON tether_jobs (dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('pending', 'claimed');
CREATE INDEX tether_jobs_finished ON tether_jobs (finished_at) WHERE state IN ('done', 'dead');
-- Dead jobs newest first (the dashboard, 0012) without walking past every done job.
CREATE INDEX tether_jobs_dead ON tether_jobs (finished_at, seq) WHERE state = 'dead';
ALTER TABLE tether_jobs SET (autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);

-- One row per (schedule, tick): the worker that inserts it enqueues that tick's job in the
-- same transaction, so a cron tick runs once however many workers see it.
CREATE TABLE tether_job_ticks (
    schedule    text        NOT NULL,
    tick        timestamptz NOT NULL,
    job_id      uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick)
);

-- Stale jobs recovered per day and queue (the recovery statement counts them as it moves them).
CREATE TABLE tether_job_recoveries (
    day         date        NOT NULL,
    queue       text        NOT NULL,
    recovered   bigint      NOT NULL,
    PRIMARY KEY (day, queue)
);
