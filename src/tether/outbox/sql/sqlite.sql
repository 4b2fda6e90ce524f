-- The outbox on SQLite: producer writes (add_event) and the consumer's inbox. Every query
-- runs inside the caller's transaction and never commits.

-- name: insert
INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
    aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
    idempotency_key, created_at, available_at, max_attempts)
VALUES (:id, :partition_key, :tenant_id, :topic, :type, :version, :aggregate_type,
    :aggregate_id, :source, :payload, :user_id, :correlation_id, :causation_id,
    :traceparent, :idempotency_key, :created_at, :created_at, :max_attempts)

-- name: claim_key
INSERT INTO tether_outbox_keys (tenant_id, key, event_id, created_at)
VALUES (COALESCE(:tenant_id, ''), :key, :event_id, :created_at)
ON CONFLICT DO NOTHING
RETURNING event_id

-- name: find_key
SELECT event_id FROM tether_outbox_keys WHERE tenant_id = COALESCE(:tenant_id, '') AND key = :key

-- name: sweep_keys
DELETE FROM tether_outbox_keys WHERE created_at < :before RETURNING 1

-- name: inbox_claim
-- Idempotent consumer: one row per (consumer, event id), in the consumer's transaction.
INSERT INTO tether_inbox (consumer, event_id, processed_at) VALUES (:consumer, :event_id, :now)
ON CONFLICT DO NOTHING
RETURNING 1

-- name: inbox_sweep
DELETE FROM tether_inbox WHERE processed_at < :before
