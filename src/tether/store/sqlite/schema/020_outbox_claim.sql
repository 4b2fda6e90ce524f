-- The outbox is never leased (the relay's write lock is its lease): the table is rebuilt without
-- the lease columns and the 'claimed' state, with the indexes of the depth-independent claim
-- (see postgres/schema/010_outbox.sql). SQLite cannot drop a UNIQUE constraint in place.
CREATE TABLE tether_outbox_next (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL,
    partition_key   TEXT,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER,
    available_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    last_error      TEXT,
    errors          TEXT    NOT NULL DEFAULT '[]',
    done_sinks      TEXT    NOT NULL DEFAULT '[]',
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    finished_at     TEXT,
    tenant_id       TEXT,
    topic           TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    aggregate_type  TEXT,
    aggregate_id    TEXT,
    source          TEXT    NOT NULL DEFAULT 'tether',
    payload         TEXT    NOT NULL,
    user_id         TEXT,
    correlation_id  TEXT,
    causation_id    TEXT,
    traceparent     TEXT,
    idempotency_key TEXT
);
INSERT INTO tether_outbox_next (seq, id, partition_key, state, attempts, max_attempts, available_at, last_error, errors, done_sinks, created_at, finished_at, tenant_id, topic, type, version, aggregate_type, aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent, idempotency_key)
SELECT seq, id, partition_key, CASE state WHEN 'claimed' THEN 'pending' ELSE state END, attempts, max_attempts, available_at, last_error, errors, done_sinks, created_at, finished_at, tenant_id, topic, type, version, aggregate_type, aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent, idempotency_key
FROM tether_outbox;
-- Keep the AUTOINCREMENT high-water mark: a seq is never reused, even after deletes.
DELETE FROM sqlite_sequence WHERE name = 'tether_outbox_next';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'tether_outbox_next', seq FROM sqlite_sequence WHERE name = 'tether_outbox';
DROP TABLE tether_outbox;
ALTER TABLE tether_outbox_next RENAME TO tether_outbox;
CREATE INDEX tether_outbox_live ON tether_outbox (seq) WHERE state = 'pending';
CREATE INDEX tether_outbox_key_live ON tether_outbox (partition_key, seq) WHERE state = 'pending';
CREATE INDEX tether_outbox_finished ON tether_outbox (finished_at)
    WHERE state IN ('done', 'dead');
CREATE INDEX tether_outbox_finished_id ON tether_outbox (id) WHERE state IN ('done', 'dead');
