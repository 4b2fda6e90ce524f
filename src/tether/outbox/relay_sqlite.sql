-- The relay's statements on SQLite. The batch runs under BEGIN IMMEDIATE: SQLite's single
-- writer lock is the lease, held for one short batch. Times are passed in, never taken from SQL.

-- The claim's primitives (tether.outbox.claiming). SQLite serves one relay, whose write lock
-- keeps every other writer out for the batch, so "lock" reads rows by seq.

-- name: walk
SELECT seq, seq, partition_key, available_at <= :now AS due
FROM tether_outbox
WHERE state = 'pending' AND seq > :after
ORDER BY seq
LIMIT :limit

-- name: lock
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks
FROM tether_outbox o
WHERE o.seq IN (SELECT value FROM json_each(:refs)) AND o.state = 'pending'

-- name: next_key
-- One index descent over (partition_key, seq): the head of the first key after :after (up to
-- :upto when given). The store steps key to key with it (a skip scan).
SELECT partition_key, seq, available_at <= :now AS due
FROM tether_outbox
WHERE state = 'pending' AND partition_key > :after AND (:upto IS NULL OR partition_key <= :upto)
ORDER BY partition_key, seq
LIMIT 1

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
-- Writes a transition decided by tether.core.lifecycle (see relay_pg.sql).
UPDATE tether_outbox
SET attempts = :attempts,
    state = :state,
    available_at = :available_at,
    finished_at = CASE WHEN :state = 'dead' THEN :now END,
    last_error = COALESCE(:error, last_error),
    errors = CASE WHEN :entry IS NULL THEN errors ELSE json_insert(errors, '$[#]', json(:entry)) END,
    done_sinks = :done
WHERE seq = :seq
