-- The outbox archive: published rows a relay keeps (keep_published with archive on) are moved
-- here in the statement that settles them, so the hot table holds pending and dead rows only
-- and its claim never walks past millions of finished rows. Range-partitioned by month on
-- finished_at: tether.outbox.partitions creates months ahead and retention drops whole months
-- (no mass DELETE, no bloat to vacuum). The default partition catches rows of a month nobody
-- created; creating that month later moves them out of it. No index: settling stays one heap
-- insert per row, and audits read a month at a time (partition pruning on finished_at).
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
