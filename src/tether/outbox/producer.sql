-- Producer-side writes. Every query runs inside the caller's transaction.

-- name: insert_pg
INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
    aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
    idempotency_key, created_at, max_attempts)
VALUES (:id, :partition_key, :tenant_id, :topic, :type, :version, :aggregate_type,
    :aggregate_id, :source, CAST(:payload AS json), :user_id, :correlation_id, :causation_id,
    :traceparent, :idempotency_key, :created_at, :max_attempts)

-- name: insert_notify_pg
-- Postgres folds identical notifications of one transaction into one, so calling this for
-- every event still wakes relays once per commit, and only after the commit.
WITH e AS (
    INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
        aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
        idempotency_key, created_at, max_attempts)
    VALUES (:id, :partition_key, :tenant_id, :topic, :type, :version, :aggregate_type,
        :aggregate_id, :source, CAST(:payload AS json), :user_id, :correlation_id, :causation_id,
        :traceparent, :idempotency_key, :created_at, :max_attempts)
    RETURNING 1
)
SELECT pg_notify('tether_outbox', '') FROM e

-- name: claim_key_pg
INSERT INTO tether_outbox_keys (tenant_id, key, event_id)
VALUES (COALESCE(:tenant_id, ''), :key, :event_id)
ON CONFLICT DO NOTHING
RETURNING event_id

-- name: find_key_pg
SELECT event_id FROM tether_outbox_keys WHERE tenant_id = COALESCE(:tenant_id, '') AND key = :key

-- name: insert_sqlite
INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
    aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
    idempotency_key, created_at, available_at, max_attempts)
VALUES (:id, :partition_key, :tenant_id, :topic, :type, :version, :aggregate_type,
    :aggregate_id, :source, :payload, :user_id, :correlation_id, :causation_id,
    :traceparent, :idempotency_key, :created_at, :created_at, :max_attempts)

-- name: claim_key_sqlite
INSERT INTO tether_outbox_keys (tenant_id, key, event_id, created_at)
VALUES (COALESCE(:tenant_id, ''), :key, :event_id, :created_at)
ON CONFLICT DO NOTHING
RETURNING event_id

-- name: find_key_sqlite
SELECT event_id FROM tether_outbox_keys WHERE tenant_id = COALESCE(:tenant_id, '') AND key = :key

-- name: sweep_keys_pg
DELETE FROM tether_outbox_keys WHERE created_at < :before RETURNING 1

-- name: sweep_keys_sqlite
DELETE FROM tether_outbox_keys WHERE created_at < :before RETURNING 1
