-- The relay's statements on SQLite. The batch runs under BEGIN IMMEDIATE: SQLite's single
-- writer lock is the lease, held for one short batch. Times are passed in, never taken from SQL.

-- name: claim
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks
FROM tether_outbox o
WHERE o.state = 'pending'
  AND o.available_at <= :now
  AND (o.partition_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM tether_outbox p
        WHERE p.partition_key = o.partition_key
          AND p.seq < o.seq
          AND p.state IN ('pending', 'claimed')))
ORDER BY o.seq
LIMIT :limit

-- name: followers
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks,
       o.available_at <= :now AS due
FROM tether_outbox o
WHERE o.partition_key = :key AND o.seq > :head AND o.state = 'pending'
ORDER BY o.seq
LIMIT :per_key

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
