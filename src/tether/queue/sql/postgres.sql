-- The work-item engine on PostgreSQL. {table}, {columns} and the other {placeholders} are
-- filled from a validated TableSpec (tether.queue.spec.render); values are :parameters.
-- All times come from the caller's clock (:now), so tests can pin it.

-- name: enqueue
-- One statement for the whole batch: arrays in, unnest out, in the given order.
INSERT INTO {table} (id, queue, partition_key, max_attempts, available_at, created_at, payload)
SELECT u.id, :queue, u.partition_key, u.max_attempts, u.available_at, :now, CAST(u.payload AS jsonb)
FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS text[]), CAST(:max_attempts AS integer[]),
            CAST(:available_at AS timestamptz[]), CAST(:payloads AS text[]))
     WITH ORDINALITY AS u(id, partition_key, max_attempts, available_at, payload, ord)
ORDER BY u.ord
ON CONFLICT (id) DO NOTHING

-- name: claim
-- MATERIALIZED pins the pick so the planner cannot re-run the SKIP LOCKED scan per row
-- (see docs/architecture.md, "The plan-cache trap"). Expired leases match too: available_at is the lease expiry while
-- claimed. An expired item that already used its last attempt (its worker kept dying) is
-- dead-lettered here instead of being handed out again.
WITH c AS MATERIALIZED (
    SELECT t.seq, t.state, t.attempts, t.max_attempts
    FROM {table} t
    WHERE {t_queue} t.state IN ('pending', 'claimed') AND t.available_at <= :now {key_order}
    ORDER BY t.seq
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
),
exhausted AS (
    UPDATE {table} t
    SET state = 'dead', finished_at = :now, lease_token = NULL, last_error = :expired_error,
        errors = t.errors || jsonb_build_array(jsonb_build_object(
            'at', CAST(:now_iso AS text), 'attempt', t.attempts,
            'error', CAST(:expired_error AS text)))
    FROM c
    WHERE t.seq = c.seq AND c.state = 'claimed'
      AND c.attempts >= COALESCE(c.max_attempts, :default_max)
)
UPDATE {table} t
SET state = 'claimed', attempts = t.attempts + 1, available_at = :lease_until,
    lease_token = :token, worker = :worker
FROM c
WHERE t.seq = c.seq
  AND NOT (c.state = 'claimed' AND c.attempts >= COALESCE(c.max_attempts, :default_max))
RETURNING {t_columns}

-- name: key_order
-- Only the oldest live item of a partition key is claimable: the key is worked in order and a
-- retrying head holds back only its own key. Served by the *_key_live partial index.
AND (t.partition_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM {table} p
    WHERE {p_queue} p.partition_key = t.partition_key
      AND p.state IN ('pending', 'claimed') AND p.seq < t.seq))

-- name: heartbeat
UPDATE {table} SET available_at = :lease_until
WHERE seq = :seq AND lease_token = :token AND state = 'claimed'
RETURNING available_at

-- name: complete_delete
DELETE FROM {table} WHERE seq = :seq AND lease_token = :token AND state = 'claimed'

-- name: complete_keep
UPDATE {table} SET state = 'done', finished_at = :now, lease_token = NULL
WHERE seq = :seq AND lease_token = :token AND state = 'claimed'

-- name: complete_many_delete
DELETE FROM {table} t
USING unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[])) AS u(seq, token)
WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
RETURNING t.seq

-- name: complete_many_keep
UPDATE {table} t SET state = 'done', finished_at = :now, lease_token = NULL
FROM unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[])) AS u(seq, token)
WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
RETURNING t.seq

-- name: settle
-- Writes a transition decided by tether.core.lifecycle: a retry, a deferral (attempts given
-- back) or a dead letter. The lease token check keeps a zombie from settling.
UPDATE {table}
SET state = :state, attempts = :attempts, available_at = :available_at, lease_token = NULL,
    finished_at = :finished_at, last_error = COALESCE(:error, last_error),
    errors = CASE WHEN CAST(:entry AS jsonb) IS NULL THEN errors
                  ELSE errors || jsonb_build_array(CAST(:entry AS jsonb)) END
WHERE seq = :seq AND lease_token = :token AND state = 'claimed'

-- name: list
SELECT {columns} FROM {table} WHERE {where} ORDER BY seq LIMIT :limit OFFSET :offset

-- name: count
SELECT count(*) AS n FROM {table} WHERE {where}

-- name: get
SELECT {columns} FROM {table} WHERE id = :id

-- name: get_dead
-- The state is a constant, not a parameter, so the planner proves the outbox's dead-only id
-- index (tether_outbox_dead_id, WHERE state = 'dead') usable even in a generic plan: that
-- table indexes no other row by id, and a look-up by id alone reads the whole table.
SELECT {columns} FROM {table} WHERE id = :id AND state = 'dead'

-- name: replay
-- In batches, so a large dead-letter queue is replayed in short transactions. The lease token
-- is cleared on tables that have one (the spec fills the placeholder).
UPDATE {table}
SET state = 'pending', attempts = 0, available_at = :now, finished_at = NULL {release_lease}
WHERE seq IN (SELECT seq FROM {table} WHERE {where} ORDER BY seq LIMIT :batch)

-- name: purge
DELETE FROM {table}
WHERE seq IN (SELECT seq FROM {table} WHERE {where} ORDER BY seq LIMIT :batch)

-- name: sweep
DELETE FROM {table}
WHERE seq IN (SELECT seq FROM {table}
              WHERE {where} AND finished_at < :cutoff LIMIT :batch)

-- name: sweep_archive
-- Move, not copy: the delete and the insert are one statement, so a row is never in both.
WITH moved AS (
    DELETE FROM {table}
    WHERE seq IN (SELECT seq FROM {table}
                  WHERE {where} AND finished_at < :cutoff LIMIT :batch)
    RETURNING *
)
INSERT INTO {archive} SELECT * FROM moved

-- name: stats
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'claimed') AS claimed,
       count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS retrying,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state IN ('pending', 'claimed') AND available_at <= :now) AS due,
       min(created_at) FILTER (WHERE state = 'pending') AS oldest_pending
FROM {table} WHERE {where}
