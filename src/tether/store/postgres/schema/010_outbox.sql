-- Transactional outbox, consumer inbox and the generic durable work-item table.
-- Hot tables keep only partial indexes on live states, so finished rows cost no index upkeep.

CREATE TABLE tether_outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    id              uuid        NOT NULL,
    partition_key   text,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    max_attempts    integer,
    available_at    timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    errors          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    done_sinks      text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    tenant_id       text,
    topic           text        NOT NULL,
    type            text        NOT NULL,
    version         integer     NOT NULL DEFAULT 1,
    aggregate_type  text,
    aggregate_id    text,
    source          text        NOT NULL DEFAULT 'tether',
    -- json, not jsonb: the text is kept byte for byte, so the relay ships it without re-encoding.
    payload         json        NOT NULL,
    user_id         text,
    correlation_id  text,
    causation_id    text,
    traceparent     text,
    idempotency_key text
);
-- A producer's insert maintains only the two pending-only indexes the relay's claim reads: seq
-- order (its windows; settling finds its rows there too) and (partition_key, seq) (its skip scan
-- over keys, the runs behind a head, and unkeyed rows, whose NULL key sorts them together). No
-- primary key: seq is an identity, and no query needs a unique index on it. Look-ups by event id
-- that need an index are of dead letters (replay, purge), so only dead rows are indexed by id:
-- marking a published row 'done' then adds it to tether_outbox_finished only, at its right edge
-- (finished_at = now()), never to a random place of an index as large as the kept rows (0011).
CREATE INDEX tether_outbox_live ON tether_outbox (seq) WHERE state = 'pending';
CREATE INDEX tether_outbox_key_live ON tether_outbox (partition_key, seq) WHERE state = 'pending';
CREATE INDEX tether_outbox_finished ON tether_outbox (finished_at) WHERE state IN ('done', 'dead');
CREATE INDEX tether_outbox_dead_id ON tether_outbox (id) WHERE state = 'dead';
-- Dead letters newest first (the dashboard's pages, 0012): dead rows only, so no hot-path cost.
CREATE INDEX tether_outbox_dead ON tether_outbox (finished_at, seq) WHERE state = 'dead';
ALTER TABLE tether_outbox SET (autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);

-- Idempotency keys outlive the outbox rows they point to (published rows may be deleted at once).
CREATE TABLE tether_outbox_keys (
    tenant_id  text        NOT NULL DEFAULT '',
    key        text        NOT NULL,
    event_id   uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX tether_outbox_keys_created ON tether_outbox_keys (created_at);

CREATE TABLE tether_inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX tether_inbox_processed ON tether_inbox (processed_at);

-- Generic durable work items (jobs, webhook deliveries, ...): one table, many named queues.
CREATE TABLE tether_items (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    queue           text        NOT NULL,
    partition_key   text,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    max_attempts    integer,
    available_at    timestamptz NOT NULL DEFAULT now(),
    lease_token     uuid,
    worker          text,
    last_error      text,
    errors          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    payload         jsonb       NOT NULL
);
CREATE INDEX tether_items_live ON tether_items (queue, seq) WHERE state IN ('pending', 'claimed');
CREATE INDEX tether_items_key_live ON tether_items (queue, partition_key, seq)
    WHERE state IN ('pending', 'claimed') AND partition_key IS NOT NULL;
CREATE INDEX tether_items_finished ON tether_items (finished_at) WHERE state IN ('done', 'dead');
ALTER TABLE tether_items SET (autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);
