-- The work-item engine on SQLite. Same rules as postgres.sql; times are ISO-8601 UTC text
-- (fixed width with microseconds, so text order is time order), ids are text, JSON is text.
-- A claim runs bury_expired then claim inside one BEGIN IMMEDIATE transaction.

-- name: enqueue
INSERT INTO {table} (id, queue, partition_key, max_attempts, available_at, created_at, payload)
VALUES (:id, :queue, :partition_key, :max_attempts, :available_at, :now, :payload)
ON CONFLICT (id) DO NOTHING

-- name: bury_expired
-- An expired item that already used its last attempt (its worker kept dying) goes dead here
-- instead of being handed out again.
UPDATE {table} AS t
SET state = 'dead', finished_at = :now, lease_token = NULL, last_error = :expired_error,
    errors = json_insert(errors, '$[#]',
        json_object('at', :now_iso, 'attempt', attempts, 'error', :expired_error))
WHERE {t_queue} t.state = 'claimed' AND t.available_at <= :now
  AND t.attempts >= COALESCE(t.max_attempts, :default_max)

-- name: claim
UPDATE {table}
SET state = 'claimed', attempts = attempts + 1, available_at = :lease_until,
    lease_token = :token, worker = :worker
WHERE seq IN (
    SELECT t.seq FROM {table} t
    WHERE {t_queue} t.state IN ('pending', 'claimed') AND t.available_at <= :now {key_order}
    ORDER BY t.seq
    LIMIT :limit)
RETURNING {columns}

-- name: key_order
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

-- name: settle
-- Writes a transition decided by tether.core.lifecycle (see postgres.sql).
UPDATE {table}
SET state = :state, attempts = :attempts, available_at = :available_at, lease_token = NULL,
    finished_at = :finished_at, last_error = COALESCE(:error, last_error),
    errors = CASE WHEN :entry IS NULL THEN errors ELSE json_insert(errors, '$[#]', json(:entry)) END
WHERE seq = :seq AND lease_token = :token AND state = 'claimed'

-- name: list
SELECT {columns} FROM {table} WHERE {where} ORDER BY seq LIMIT :limit OFFSET :offset

-- name: count
SELECT count(*) AS n FROM {table} WHERE {where}

-- name: get
SELECT {columns} FROM {table} WHERE id = :id

-- name: get_dead
-- SQLite uses a partial index only when the query carries the index's own WHERE term: the
-- outbox's id index covers finished rows (tether_outbox_finished_id, WHERE state IN ('done',
-- 'dead')), so that term is written out before narrowing to dead rows.
SELECT {columns} FROM {table} WHERE id = :id AND state IN ('done', 'dead') AND state = 'dead'

-- name: replay
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

-- name: sweep_pick
SELECT seq FROM {table} WHERE {where} AND finished_at < :cutoff LIMIT :batch

-- name: archive_copy
-- archive_copy then archive_delete run in one BEGIN IMMEDIATE transaction.
INSERT INTO {archive} SELECT * FROM {table} WHERE seq IN (SELECT value FROM json_each(:seqs))

-- name: archive_delete
DELETE FROM {table} WHERE seq IN (SELECT value FROM json_each(:seqs))

-- name: stats
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'claimed') AS claimed,
       count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS retrying,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state IN ('pending', 'claimed') AND available_at <= :now) AS due,
       min(created_at) FILTER (WHERE state = 'pending') AS oldest_pending
FROM {table} WHERE {where}
