-- The month-partitioned archive of published outbox rows (see schema/050_outbox_archive.sql).
CREATE TABLE tether_outbox_archive (
    seq             bigint      NOT NULL,
    id              uuid        NOT NULL,
    partition_key   text,
    attempts        integer     NOT NULL,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    done_sinks      text[]      NOT NULL,
    errors          jsonb       NOT NULL,
    tenant_id       text,
    topic           text        NOT NULL,
    type            text        NOT NULL,
    version         integer     NOT NULL,
    aggregate_type  text,
    aggregate_id    text,
    source          text        NOT NULL,
    payload         json        NOT NULL,
    user_id         text,
    correlation_id  text,
    causation_id    text,
    traceparent     text,
    idempotency_key text
) PARTITION BY RANGE (finished_at);
CREATE TABLE tether_outbox_archive_default PARTITION OF tether_outbox_archive DEFAULT;
