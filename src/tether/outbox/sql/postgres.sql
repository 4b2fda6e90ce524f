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

-- name: insert_tenant
-- With tenancy on, the insert also scopes the transaction to the event's tenant
-- (tether_set_tenant returns it; a transaction scoped to another tenant is refused), so
-- row-level security checks the row without an extra statement.
INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
    aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
    idempotency_key, created_at, max_attempts)
VALUES (:id, :partition_key, tether_set_tenant(:tenant_id), :topic, :type,
    :version, :aggregate_type, :aggregate_id, :source, CAST(:payload AS json), :user_id,
    :correlation_id, :causation_id, :traceparent, :idempotency_key, :created_at, :max_attempts)

-- name: insert_notify_tenant
WITH e AS (
    INSERT INTO tether_outbox (id, partition_key, tenant_id, topic, type, version, aggregate_type,
        aggregate_id, source, payload, user_id, correlation_id, causation_id, traceparent,
        idempotency_key, created_at, max_attempts)
    VALUES (:id, :partition_key, tether_set_tenant(:tenant_id), :topic,
        :type, :version, :aggregate_type, :aggregate_id, :source, CAST(:payload AS json),
        :user_id, :correlation_id, :causation_id, :traceparent, :idempotency_key, :created_at,
        :max_attempts)
    RETURNING 1
)
SELECT pg_notify('tether_outbox', '') FROM e

-- name: claim_key
INSERT INTO tether_outbox_keys (tenant_id, key, event_id)
VALUES (COALESCE(:tenant_id, ''), :key, :event_id)
ON CONFLICT DO NOTHING
RETURNING event_id

-- name: claim_key_tenant
-- Runs before the insert, so it scopes the transaction first (find_key then sees the tenant's keys).
INSERT INTO tether_outbox_keys (tenant_id, key, event_id)
VALUES (tether_set_tenant(:tenant_id), :key, :event_id)
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
INSERT INTO tether_inbox (consumer, event_id) VALUES (:consumer, :event_id)
ON CONFLICT DO NOTHING
RETURNING 1

-- name: inbox_sweep
DELETE FROM tether_inbox WHERE processed_at < :before

-- ----------------------------------------------------------------------------------------
-- The relay's hot path on PostgreSQL. Row locks taken here are the lease: they last until the
-- batch's transaction ends, and a crashed relay's transaction rolls back and frees them.

-- name: heads
-- Heads (no earlier pending row of their key: one probe of the (partition_key, seq) index each)
-- and unkeyed rows, among the first :window pending rows only, so that a deep backlog on a few
-- keys is never walked (tether.outbox.claiming). One flat locking select: no sub-select for a
-- cached plan to re-run per row (the window's end is an uncorrelated InitPlan, run once).
-- Relay sessions force custom plans and keep bitmap scans off (store_pg.SERVER_SETTINGS).
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks
FROM tether_outbox o
WHERE o.state = 'pending'
  AND o.available_at <= now()
  AND o.seq < COALESCE((SELECT w.seq FROM tether_outbox w WHERE w.state = 'pending'
                        ORDER BY w.seq OFFSET :window LIMIT 1), 9223372036854775807)
  AND (o.partition_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM tether_outbox p
        WHERE p.partition_key = o.partition_key AND p.seq < o.seq AND p.state = 'pending'))
ORDER BY o.seq
LIMIT :limit
FOR UPDATE OF o SKIP LOCKED

-- name: window_end
-- Where a window of :window pending rows ends (no row: it holds every pending row).
SELECT seq FROM tether_outbox WHERE state = 'pending' ORDER BY seq OFFSET :window LIMIT 1

-- name: key_heads
-- A skip scan over (partition_key, seq): each step is one index descent to the next key's head,
-- so its cost is the number of keys visited, never their depth. It starts after :cursor and
-- wraps around once; heads that are not due, or of keys already planned, are passed over.
WITH RECURSIVE h(key, seq, due, wrapped) AS (
    (SELECT * FROM (
        (SELECT partition_key, seq, available_at <= now(), false FROM tether_outbox
         WHERE state = 'pending' AND partition_key > :cursor
         ORDER BY partition_key, seq LIMIT 1)
        UNION ALL
        (SELECT partition_key, seq, available_at <= now(), true FROM tether_outbox
         WHERE state = 'pending' AND partition_key <= :cursor
         ORDER BY partition_key, seq LIMIT 1)) first LIMIT 1)
    UNION ALL
    SELECT n.* FROM h CROSS JOIN LATERAL (
        SELECT * FROM (
            (SELECT t.partition_key, t.seq, t.available_at <= now(), h.wrapped FROM tether_outbox t
             WHERE t.state = 'pending' AND t.partition_key > h.key
               AND (NOT h.wrapped OR t.partition_key <= :cursor)
             ORDER BY t.partition_key, t.seq LIMIT 1)
            UNION ALL
            (SELECT t.partition_key, t.seq, t.available_at <= now(), true FROM tether_outbox t
             WHERE NOT h.wrapped AND t.state = 'pending' AND t.partition_key <= :cursor
               AND t.partition_key IS NOT NULL
             ORDER BY t.partition_key, t.seq LIMIT 1)) step LIMIT 1) n
)
SELECT key, seq FROM h
WHERE due AND NOT (key = ANY(:exclude::text[]))
LIMIT :limit

-- name: lock_heads
-- Heads a skip scan found, locked if still pending and due; another relay may hold them.
SELECT o.seq, o.partition_key
FROM tether_outbox o
WHERE o.seq = ANY(:seqs::bigint[]) AND o.state = 'pending' AND o.available_at <= now()
FOR UPDATE OF o SKIP LOCKED

-- name: lock_runs
-- Each key's rows from its head on, for heads this batch holds. No SKIP LOCKED: only the holder
-- of a head locks the rows behind it, so a lock here is never another relay's, and skipping one
-- would publish the row after it out of order.
SELECT f.seq, f.id, f.type, f.payload, f.topic, f.version, f.tenant_id, f.aggregate_type,
       f.aggregate_id, f.partition_key, f.source, f.created_at, f.user_id, f.correlation_id,
       f.causation_id, f.traceparent, f.idempotency_key, f.attempts, f.max_attempts, f.done_sinks,
       f.available_at <= now() AS due
FROM unnest(:keys::text[], :heads::bigint[]) AS h(key, seq)
CROSS JOIN LATERAL (
    -- Row comparison and order on (partition_key, seq): the key's own index range, never a
    -- walk of the seq index past other keys' rows.
    SELECT t.* FROM tether_outbox t
    WHERE t.partition_key = h.key AND t.state = 'pending'
      AND (t.partition_key, t.seq) >= (h.key, h.seq)
    ORDER BY t.partition_key, t.seq
    LIMIT :per_key
    FOR UPDATE OF t
) f

-- name: unkeyed
SELECT o.seq, o.id, o.type, o.payload, o.topic, o.version, o.tenant_id, o.aggregate_type,
       o.aggregate_id, o.partition_key, o.source, o.created_at, o.user_id, o.correlation_id,
       o.causation_id, o.traceparent, o.idempotency_key, o.attempts, o.max_attempts, o.done_sinks
FROM tether_outbox o
WHERE o.state = 'pending' AND o.partition_key IS NULL AND o.seq > :after
  AND o.available_at <= now()
ORDER BY o.seq
LIMIT :limit
FOR UPDATE OF o SKIP LOCKED

-- name: delete_published
-- Settling statements name state = 'pending' so that they find their rows through the
-- pending-only seq index (the table has no other index on seq).
DELETE FROM tether_outbox WHERE seq = ANY(:seqs::bigint[]) AND state = 'pending'

-- name: mark_published
UPDATE tether_outbox
SET state = 'done', finished_at = now(), attempts = attempts + 1, last_error = NULL
WHERE seq = ANY(:seqs::bigint[]) AND state = 'pending'

-- name: archive_published
-- keep_published with the archive on: the rows leave the hot table and land in their month of
-- tether_outbox_archive in one statement, so the hot table never accumulates finished rows.
WITH moved AS (
    DELETE FROM tether_outbox WHERE seq = ANY(:seqs::bigint[]) AND state = 'pending'
    RETURNING seq, id, partition_key, attempts, created_at, done_sinks, errors, tenant_id, topic,
              type, version, aggregate_type, aggregate_id, source, payload, user_id,
              correlation_id, causation_id, traceparent, idempotency_key
)
INSERT INTO tether_outbox_archive (seq, id, partition_key, attempts, created_at, finished_at,
    done_sinks, errors, tenant_id, topic, type, version, aggregate_type, aggregate_id, source,
    payload, user_id, correlation_id, causation_id, traceparent, idempotency_key)
SELECT seq, id, partition_key, attempts + 1, created_at, now(), done_sinks, errors, tenant_id,
       topic, type, version, aggregate_type, aggregate_id, source, payload, user_id,
       correlation_id, causation_id, traceparent, idempotency_key
FROM moved

-- name: record_retries
-- Writes transitions decided by tether.core.lifecycle. This batch holds the rows' locks, so the
-- attempt count is written as decided; times are the database's, like the claim's.
UPDATE tether_outbox o
SET attempts = f.attempts,
    state = f.state,
    available_at = now() + make_interval(secs => f.delay),
    finished_at = CASE WHEN f.state = 'dead' THEN now() END,
    last_error = COALESCE(f.error, o.last_error),
    errors = CASE WHEN f.entry IS NULL THEN o.errors
                  ELSE o.errors || jsonb_build_array(f.entry::jsonb) END,
    done_sinks = CASE WHEN f.done = '' THEN '{}'::text[] ELSE string_to_array(f.done, ',') END
FROM unnest(:seqs::bigint[], :states::text[], :attempts::int[], :delays::float8[],
            :errors::text[], :entries::text[], :dones::text[])
     AS f(seq, state, attempts, delay, error, entry, done)
WHERE o.seq = f.seq AND o.state = 'pending'
