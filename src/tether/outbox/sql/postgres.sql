-- The outbox on PostgreSQL: producer writes (add_event) and the consumer's inbox. Every
-- query runs inside the caller's transaction and never commits.

-- name: insert
INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
    aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
    idempotency_key, created_at, max_attempts)
VALUES (:id, :partition_key, :tenant_id, :topic, :type, :version, :aggregate_type,
    :aggregate_id, :source, CAST(:payload AS json), :user_id, :correlation_id, :causation_id,
    :traceparent, :idempotency_key, :created_at, :max_attempts)

-- name: insert_notify
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

-- name: claim_key
INSERT INTO tether_outbox_keys (tenant_id, key, event_id)
VALUES (COALESCE(:tenant_id, ''), :key, :event_id)
ON CONFLICT DO NOTHING
RETURNING event_id

-- name: find_key
SELECT event_id FROM tether_outbox_keys WHERE tenant_id = COALESCE(:tenant_id, '') AND key = :key

-- name: sweep_keys
DELETE FROM tether_outbox_keys WHERE created_at < :before RETURNING 1

-- name: inbox_claim
-- Idempotent consumer: one row per (consumer, event id), in the consumer's transaction.
INSERT INTO tether_inbox (consumer, event_id) VALUES (:consumer, :event_id)
ON CONFLICT DO NOTHING
RETURNING 1

-- name: inbox_sweep
DELETE FROM tether_inbox WHERE processed_at < :before
