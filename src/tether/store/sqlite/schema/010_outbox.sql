-- SQLite mirror of postgres/schema/010_outbox.sql: same tables, columns and defaults.
-- uuid → TEXT; json/jsonb/text[] → JSON TEXT; timestamptz → ISO-8601 UTC TEXT
-- ("2026-01-01T00:00:00.000000+00:00"; fixed-width UTC text sorts in time order; the SQL
-- defaults pad strftime's milliseconds with 000 to keep that width).
-- AUTOINCREMENT keeps seq from being reused after deletes, as an identity column would.

CREATE TABLE IF NOT EXISTS tether_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    partition_key   TEXT,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER,
    available_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    lease_token     TEXT,
    worker          TEXT,
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
CREATE INDEX IF NOT EXISTS tether_outbox_live ON tether_outbox (seq)
    WHERE state IN ('pending', 'claimed');
CREATE INDEX IF NOT EXISTS tether_outbox_key_live ON tether_outbox (partition_key, seq)
    WHERE state IN ('pending', 'claimed') AND partition_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tether_outbox_finished ON tether_outbox (finished_at)
    WHERE state IN ('done', 'dead');

CREATE TABLE IF NOT EXISTS tether_outbox_keys (
    tenant_id  TEXT NOT NULL DEFAULT '',
    key        TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS tether_outbox_keys_created ON tether_outbox_keys (created_at);

CREATE TABLE IF NOT EXISTS tether_inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS tether_inbox_processed ON tether_inbox (processed_at);

CREATE TABLE IF NOT EXISTS tether_items (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    queue           TEXT    NOT NULL,
    partition_key   TEXT,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER,
    available_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    lease_token     TEXT,
    worker          TEXT,
    last_error      TEXT,
    errors          TEXT    NOT NULL DEFAULT '[]',
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    finished_at     TEXT,
    payload         TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS tether_items_live ON tether_items (queue, seq)
    WHERE state IN ('pending', 'claimed');
CREATE INDEX IF NOT EXISTS tether_items_key_live ON tether_items (queue, partition_key, seq)
    WHERE state IN ('pending', 'claimed') AND partition_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tether_items_finished ON tether_items (finished_at)
    WHERE state IN ('done', 'dead');
