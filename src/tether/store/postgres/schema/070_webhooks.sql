-- Outgoing webhooks: endpoints per tenant, one delivery per (event, endpoint), and the log of
-- every attempt. A delivery is a durable work item of the engine (tether.queue): the table has
-- the engine's core columns, its queue column holds the endpoint's priority, and the dispatcher
-- claims it under a lease. The webhooks sink writes deliveries in the relay's own transaction,
-- so an event is settled in the outbox exactly when its deliveries exist; the unique
-- (event_id, endpoint_id) makes a re-run of the same event a no-op. tenant_id is '' for
-- endpoints (and events) of no tenant, so matching a tenant is one indexed equality.
CREATE TABLE tether_webhook_endpoints (
    id              uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL DEFAULT '',
    url             text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    filters         text[]      NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    priority        text        NOT NULL DEFAULT 'medium'
                    CHECK (priority IN ('high', 'medium', 'low')),
    rate_limit      double precision,
    concurrency     integer     NOT NULL DEFAULT 10,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    secrets         jsonb       NOT NULL,
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX tether_webhook_endpoints_tenant ON tether_webhook_endpoints (tenant_id, created_at);

CREATE TABLE tether_webhook_deliveries (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    queue           text        NOT NULL CHECK (queue IN ('high', 'medium', 'low')),
    partition_key   text,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    max_attempts    integer,
    available_at    timestamptz NOT NULL,
    lease_token     uuid,
    worker          text,
    last_error      text,
    errors          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    payload         json        NOT NULL,
    tenant_id       text        NOT NULL,
    endpoint_id     uuid        NOT NULL REFERENCES tether_webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX tether_webhook_deliveries_live ON tether_webhook_deliveries (queue, seq)
    WHERE state IN ('pending', 'claimed');
CREATE INDEX tether_webhook_deliveries_endpoint ON tether_webhook_deliveries (endpoint_id, created_at);
CREATE INDEX tether_webhook_deliveries_finished ON tether_webhook_deliveries (finished_at)
    WHERE state IN ('done', 'dead');
-- Dead deliveries newest first (the dashboard, 0012).
CREATE INDEX tether_webhook_deliveries_dead ON tether_webhook_deliveries (finished_at, seq)
    WHERE state = 'dead';
ALTER TABLE tether_webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);

-- One row per attempt, written by the dispatcher (no foreign key: an attempt is written on the
-- hot path and deleting an endpoint deletes its attempts explicitly).
CREATE TABLE tether_webhook_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     uuid        NOT NULL,
    endpoint_id     uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    event_id        uuid        NOT NULL,
    attempt         integer     NOT NULL,
    at              timestamptz NOT NULL,
    outcome         text        NOT NULL,
    status_code     integer,
    latency_ms      double precision,
    response        text,
    error           text
);
CREATE INDEX tether_webhook_attempts_delivery ON tether_webhook_attempts (delivery_id, id);
CREATE INDEX tether_webhook_attempts_endpoint ON tether_webhook_attempts (endpoint_id, at);
