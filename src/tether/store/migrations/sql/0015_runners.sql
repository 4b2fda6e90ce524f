-- Runner registry (tether.ops.runners): a row per relay, job worker, webhook dispatcher,
-- real-time gateway and consumer, beaten every interval_s seconds, and its history of beats.
-- Operator data, not tenant data: no tenant policy.
CREATE TABLE tether_runners (
    id           uuid             PRIMARY KEY,
    kind         text             NOT NULL,
    name         text             NOT NULL,
    host         text             NOT NULL,
    pid          integer          NOT NULL,
    started_at   timestamptz      NOT NULL,
    heartbeat_at timestamptz      NOT NULL,
    interval_s   real             NOT NULL CHECK (interval_s > 0),
    stopped_at   timestamptz,
    stats        jsonb            NOT NULL DEFAULT '{}'
);

-- The listing and the pruning pick runners by when they were last heard of.
CREATE INDEX tether_runners_seen ON tether_runners ((coalesce(stopped_at, heartbeat_at)));

-- One point per beat (and one at registration), for throughput over time; pruned after 24 hours.
CREATE TABLE tether_runner_beats (
    runner_id uuid        NOT NULL REFERENCES tether_runners (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL,
    stats     jsonb       NOT NULL,
    PRIMARY KEY (runner_id, at)
);

CREATE INDEX tether_runner_beats_at ON tether_runner_beats (at);

-- Each kind's stats per minute, kept up by every beat in its transaction: a counter's increases
-- summed (from the runner's previous beat; a counter that went down was reset, so its whole
-- value counts), a gauge's highest value. History in buckets of whole minutes reads these few
-- rows instead of every beat; pruned after 24 hours.
CREATE TABLE tether_runner_minutes (
    minute   timestamptz      NOT NULL,
    kind     text             NOT NULL,
    key      text             NOT NULL,
    increase double precision,
    high     double precision,
    PRIMARY KEY (minute, kind, key)
);
