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
-- :tenant NULL: every tenant's keys; the COALESCE takes its type from the column.
DELETE FROM tether_outbox_keys
WHERE created_at < :before AND tenant_id = COALESCE(:tenant, tenant_id)
RETURNING 1

-- name: inbox_claim
-- Idempotent consumer: one row per (consumer, event id), in the consumer's transaction.
INSERT INTO tether_inbox (consumer, event_id, processed_at) VALUES (:consumer, :event_id, :now)
ON CONFLICT DO NOTHING
RETURNING 1

-- name: inbox_sweep
DELETE FROM tether_inbox WHERE processed_at < :before

-- ----------------------------------------------------------------------------------------
-- The relay's statements on SQLite. The batch runs under BEGIN IMMEDIATE: SQLite's single
-- writer lock is the lease, held for one short batch. Times are passed in, never taken from SQL.

-- The claim's primitives (tether.outbox.claiming). SQLite serves one relay, whose write lock
-- keeps every other writer out for the batch, so "lock" reads rows by seq.

-- name: heads
-- Heads and unkeyed rows among the first :window pending rows (see postgres.sql).
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks
FROM tether_outbox o
WHERE o.state = 'pending'
  AND o.available_at <= :now
  AND o.seq < COALESCE((SELECT w.seq FROM tether_outbox w WHERE w.state = 'pending'
                        ORDER BY w.seq LIMIT 1 OFFSET :window), 9223372036854775807)
  AND (o.partition_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM tether_outbox p
        WHERE p.partition_key = o.partition_key AND p.seq < o.seq AND p.state = 'pending'))
ORDER BY o.seq
LIMIT :limit

-- name: window_end
SELECT seq FROM tether_outbox WHERE state = 'pending' ORDER BY seq LIMIT 1 OFFSET :window

-- name: next_key
-- One index descent over (partition_key, seq): the head of the first key after :after (up to
-- :upto when given). The store steps key to key with it (a skip scan).
SELECT partition_key, seq, available_at <= :now AS due
FROM tether_outbox
WHERE state = 'pending' AND partition_key > :after AND (:upto IS NULL OR partition_key <= :upto)
ORDER BY partition_key, seq
LIMIT 1

-- name: lock_heads
SELECT o.seq, o.partition_key
FROM tether_outbox o
WHERE o.seq IN (SELECT value FROM json_each(:seqs)) AND o.state = 'pending'
  AND o.available_at <= :now

-- name: run
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks, o.available_at <= :now AS due
FROM tether_outbox o
WHERE o.partition_key = :key AND o.seq >= :head AND o.state = 'pending'
ORDER BY o.seq
LIMIT :per_key

-- name: unkeyed
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks
FROM tether_outbox o
WHERE o.state = 'pending' AND o.partition_key IS NULL AND o.seq > :after
  AND o.available_at <= :now
ORDER BY o.seq
LIMIT :limit

-- name: delete_published
DELETE FROM tether_outbox WHERE seq = :seq

-- name: mark_published
UPDATE tether_outbox
SET state = 'done', finished_at = :now, attempts = attempts + 1, last_error = NULL
WHERE seq = :seq

-- name: record_retry
-- Writes a transition decided by tether.core.lifecycle (see postgres.sql, record_retries).
UPDATE tether_outbox
SET attempts = :attempts,
    state = :state,
    available_at = :available_at,
    finished_at = CASE WHEN :state = 'dead' THEN :now END,
    last_error = COALESCE(:error, last_error),
    errors = CASE WHEN :entry IS NULL THEN errors ELSE json_insert(errors, '$[#]', json(:entry)) END,
    done_sinks = :done
WHERE seq = :seq
