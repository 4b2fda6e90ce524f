-- Idempotent consumer: one row per (consumer, event id), written in the consumer's transaction.

-- name: claim_pg
INSERT INTO tether_inbox (consumer, event_id) VALUES (:consumer, :event_id)
ON CONFLICT DO NOTHING
RETURNING 1

-- name: claim_sqlite
INSERT INTO tether_inbox (consumer, event_id, processed_at) VALUES (:consumer, :event_id, :now)
ON CONFLICT DO NOTHING
RETURNING 1

-- name: sweep_pg
DELETE FROM tether_inbox WHERE processed_at < :before

-- name: sweep_sqlite
DELETE FROM tether_inbox WHERE processed_at < :before
