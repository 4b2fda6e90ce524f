-- The relay's hot path on PostgreSQL. Row locks taken here are the lease: they last until the
-- batch's transaction ends, and a crashed relay's transaction rolls back and frees them.

-- name: claim
-- MATERIALIZED keeps the planner from re-running the SKIP LOCKED pick per row once the table
-- grows past the size it was planned for; the relay also forces custom plans on its sessions.
WITH c AS MATERIALIZED (
    SELECT o.seq
    FROM tether_outbox o
    WHERE o.state = 'pending'
      AND o.available_at <= now()
      AND (o.partition_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM tether_outbox p
            WHERE p.partition_key = o.partition_key
              AND p.seq < o.seq
              AND p.state IN ('pending', 'claimed')))
    ORDER BY o.seq
    LIMIT :limit
    FOR UPDATE OF o SKIP LOCKED
)
SELECT t.seq, t.id, t.type, t.payload, t.topic, t.version, t.tenant_id, t.aggregate_type,
       t.aggregate_id, t.partition_key, t.source, t.created_at, t.user_id, t.correlation_id,
       t.causation_id, t.traceparent, t.idempotency_key, t.attempts, t.max_attempts, t.done_sinks
FROM tether_outbox t JOIN c USING (seq)
ORDER BY t.seq

-- name: followers
-- The rows after each claimed head, in order. Rows not yet due end a run (the relay cuts it
-- there), so a follower is never published ahead of an earlier row of its key.
SELECT f.seq, f.id, f.type, f.payload, f.topic, f.version, f.tenant_id, f.aggregate_type,
       f.aggregate_id, f.partition_key, f.source, f.created_at, f.user_id, f.correlation_id,
       f.causation_id, f.traceparent, f.idempotency_key, f.attempts, f.max_attempts, f.done_sinks,
       f.available_at <= now() AS due
FROM unnest(:keys::text[], :heads::bigint[]) AS h(key, seq)
CROSS JOIN LATERAL (
    SELECT t.* FROM tether_outbox t
    WHERE t.partition_key = h.key AND t.seq > h.seq AND t.state = 'pending'
    ORDER BY t.seq
    LIMIT :per_key
    FOR UPDATE OF t
) f
ORDER BY f.seq

-- name: delete_published
DELETE FROM tether_outbox WHERE seq = ANY(:seqs::bigint[])

-- name: mark_published
UPDATE tether_outbox
SET state = 'done', finished_at = now(), attempts = attempts + 1, last_error = NULL
WHERE seq = ANY(:seqs::bigint[])

-- name: record_retries
UPDATE tether_outbox o
SET attempts = o.attempts + CASE WHEN f.charge THEN 1 ELSE 0 END,
    state = CASE WHEN f.dead THEN 'dead' ELSE 'pending' END,
    available_at = now() + make_interval(secs => f.delay),
    finished_at = CASE WHEN f.dead THEN now() END,
    last_error = f.error,
    errors = CASE WHEN f.charge
        THEN o.errors || jsonb_build_array(jsonb_build_object(
            'at', now(), 'attempt', o.attempts + 1, 'error', f.error))
        ELSE o.errors END,
    done_sinks = CASE WHEN f.done = '' THEN '{}'::text[] ELSE string_to_array(f.done, ',') END
FROM unnest(:seqs::bigint[], :errors::text[], :delays::float8[], :charges::bool[],
            :deads::bool[], :dones::text[]) AS f(seq, error, delay, charge, dead, done)
WHERE o.seq = f.seq
