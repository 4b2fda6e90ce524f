-- tether.jobs on PostgreSQL. {columns} / {t_columns} come from the JOBS TableSpec; values are
-- :parameters; every time comes from the caller's clock (:now).

-- name: enqueue
-- One statement per batch. A row whose de-duplication key is held by a queued or running job
-- is not inserted (the partial unique index); the answer then names the job holding the key.
-- Keys are per tenant (a job's tenant_id defaults to tether_tenant(); migration 0014).
WITH input AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:queues AS text[]),
                         CAST(:priorities AS integer[]), CAST(:available_at AS timestamptz[]),
                         CAST(:max_attempts AS integer[]), CAST(:timeouts AS double precision[]),
                         CAST(:dedup_keys AS text[]), CAST(:payloads AS text[]))
        WITH ORDINALITY AS u(id, name, queue, priority, available_at, max_attempts, timeout_s,
                             dedup_key, payload, ord)
),
ins AS (
    INSERT INTO tether_jobs (id, name, queue, priority, available_at, max_attempts, timeout_s,
                             dedup_key, created_at, payload)
    SELECT id, name, queue, priority, available_at, max_attempts, timeout_s, dedup_key,
           CAST(:now AS timestamptz), CAST(payload AS jsonb)
    FROM input ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING id, dedup_key
)
SELECT i.ord, i.id AS wanted, ins.id AS inserted,
       COALESCE(ins.id, by_key.id,
                (SELECT j.id FROM tether_jobs j
                 WHERE j.dedup_key = i.dedup_key AND j.state IN ('pending', 'claimed')
                   AND COALESCE(j.tenant_id, '') = COALESCE(tether_tenant(), '')
                 LIMIT 1)) AS job_id
FROM input i
LEFT JOIN ins ON ins.id = i.id
LEFT JOIN ins AS by_key ON ins.id IS NULL AND by_key.dedup_key = i.dedup_key
ORDER BY i.ord

-- name: enqueue_one
-- The common case, one job: a plain insert plans in a fraction of the batch statement's time.
-- When the de-duplication key is held, the answer names the job holding it.
WITH ins AS (
    INSERT INTO tether_jobs (id, name, queue, priority, available_at, max_attempts, timeout_s,
                             dedup_key, created_at, payload)
    VALUES (:id, :name, :queue, :priority, :available_at, :max_attempts, :timeout_s,
            :dedup_key, :now, CAST(:payload AS jsonb))
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT 1 AS ord, CAST(:id AS uuid) AS wanted, (SELECT id FROM ins) AS inserted,
       COALESCE((SELECT id FROM ins),
                (SELECT j.id FROM tether_jobs j
                 WHERE j.dedup_key = :dedup_key AND j.state IN ('pending', 'claimed')
                   AND COALESCE(j.tenant_id, '') = COALESCE(tether_tenant(), '')
                 LIMIT 1)) AS job_id

-- name: claim
-- Highest priority first, then FIFO; pending only (stale claimed jobs come back through
-- `recover`, which records why). MATERIALIZED pins the SKIP LOCKED pick (architecture.md).
WITH c AS MATERIALIZED (
    SELECT t.seq FROM tether_jobs t
    WHERE t.queue = :queue AND t.state = 'pending' AND t.available_at <= :now
    ORDER BY t.priority DESC, t.seq
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE tether_jobs t
SET state = 'claimed', attempts = t.attempts + 1, available_at = :lease_until,
    lease_token = :token, worker = :worker, heartbeat_at = :now
FROM c
WHERE t.seq = c.seq
RETURNING {t_columns}

-- name: heartbeat_many
-- One statement for every job a worker holds; a job missing from the answer was recovered,
-- cancelled or finished by someone else, and its run is abandoned.
UPDATE tether_jobs t SET available_at = :lease_until, heartbeat_at = :now
FROM unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[])) AS u(seq, token)
WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
RETURNING t.seq

-- name: held
-- The whole row of a job the caller still holds (no row: its lease is gone). The worker claims
-- only the columns a run needs and reads the rest here when a job fails or is deferred.
SELECT {t_columns} FROM tether_jobs t
WHERE t.seq = :seq AND t.lease_token = :token AND t.state = 'claimed'

-- name: complete
-- Lease-checked: a zombie whose job was recovered finds no row and its result is discarded.
UPDATE tether_jobs
SET state = 'done', finished_at = :now, lease_token = NULL, result = CAST(:result AS jsonb)
WHERE seq = :seq AND lease_token = :token AND state = 'claimed'

-- name: complete_many
UPDATE tether_jobs t
SET state = 'done', finished_at = :now, lease_token = NULL, result = CAST(u.result AS jsonb)
FROM unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[]), CAST(:results AS text[]))
     AS u(seq, token, result)
WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
RETURNING t.seq

-- name: complete_many_delete
DELETE FROM tether_jobs t
USING unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[])) AS u(seq, token)
WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
RETURNING t.seq

-- name: settle_and_claim
-- One round trip per worker turn: record the finished batch (lease-checked, as
-- complete_many) and claim the next for the same queue (as claim). The two touch disjoint
-- rows (claimed vs pending), so one snapshot serves both. The answer has at least one row:
-- one row's done_seqs lists the settled seqs (a seq missing from it lost its lease; the
-- other rows' is NULL, not a copy per claimed job); the job columns are NULL when nothing
-- was claimed.
WITH done AS (
    UPDATE tether_jobs t
    SET state = 'done', finished_at = :now, lease_token = NULL, result = CAST(u.result AS jsonb)
    FROM unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[]), CAST(:results AS text[]))
         AS u(seq, token, result)
    WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
    RETURNING t.seq
),
c AS MATERIALIZED (
    SELECT t.seq FROM tether_jobs t
    WHERE t.queue = :queue AND t.state = 'pending' AND t.available_at <= :now
    ORDER BY t.priority DESC, t.seq
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
),
claimed AS (
    UPDATE tether_jobs t
    SET state = 'claimed', attempts = t.attempts + 1, available_at = :lease_until,
        lease_token = :token, worker = :worker, heartbeat_at = :now
    FROM c
    WHERE t.seq = c.seq
    RETURNING {t_columns}
)
SELECT CASE WHEN row_number() OVER () = 1 THEN d.done_seqs END AS done_seqs, claimed.*
FROM (SELECT array_agg(seq) AS done_seqs FROM done) AS d
LEFT JOIN claimed ON true

-- name: settle_delete_and_claim
-- The same with finished rows deleted instead of kept with their result (keep_results=False).
WITH done AS (
    DELETE FROM tether_jobs t
    USING unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[])) AS u(seq, token)
    WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
    RETURNING t.seq
),
c AS MATERIALIZED (
    SELECT t.seq FROM tether_jobs t
    WHERE t.queue = :queue AND t.state = 'pending' AND t.available_at <= :now
    ORDER BY t.priority DESC, t.seq
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
),
claimed AS (
    UPDATE tether_jobs t
    SET state = 'claimed', attempts = t.attempts + 1, available_at = :lease_until,
        lease_token = :token, worker = :worker, heartbeat_at = :now
    FROM c
    WHERE t.seq = c.seq
    RETURNING {t_columns}
)
SELECT CASE WHEN row_number() OVER () = 1 THEN d.done_seqs END AS done_seqs, claimed.*
FROM (SELECT array_agg(seq) AS done_seqs FROM done) AS d
LEFT JOIN claimed ON true

-- name: recover
-- Stale-job recovery: a claimed job whose lease ran out (no heartbeat within the threshold)
-- goes back to pending with the message in its history, or to dead when the attempt the lost
-- run spent was its last (a job that kills its worker ends dead instead of looping). The
-- day's count per queue is kept in the same statement.
WITH stale AS MATERIALIZED (
    SELECT seq FROM tether_jobs
    WHERE state = 'claimed' AND available_at <= :now
    ORDER BY available_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
moved AS (
    UPDATE tether_jobs t
    SET state = CASE WHEN t.attempts >= COALESCE(t.max_attempts, :default_max)
                     THEN 'dead' ELSE 'pending' END,
        finished_at = CASE WHEN t.attempts >= COALESCE(t.max_attempts, :default_max)
                           THEN CAST(:now AS timestamptz) END,
        available_at = :now, lease_token = NULL, last_error = :message,
        errors = t.errors || jsonb_build_array(jsonb_build_object(
            'at', CAST(:now_iso AS text), 'attempt', t.attempts, 'error', CAST(:message AS text)))
    FROM stale
    WHERE t.seq = stale.seq
    RETURNING t.id, t.queue, t.name, t.state, t.worker
),
counted AS (
    INSERT INTO tether_job_recoveries (day, queue, recovered)
    SELECT CAST(:day AS date), queue, count(*) FROM moved GROUP BY queue
    ON CONFLICT (day, queue)
    DO UPDATE SET recovered = tether_job_recoveries.recovered + EXCLUDED.recovered
)
SELECT id, queue, name, state, worker FROM moved

-- name: recoveries
SELECT day, queue, recovered FROM tether_job_recoveries
WHERE day >= CAST(:since AS date) ORDER BY day, queue

-- name: recovered_on
SELECT COALESCE(sum(recovered), 0) AS n FROM tether_job_recoveries WHERE day = CAST(:day AS date)

-- name: cancel
-- Cancelling ends a queued or running job as dead with the reason; a running job's worker
-- learns it at its next heartbeat (its lease is gone) and abandons the run.
UPDATE tether_jobs
SET state = 'dead', finished_at = :now, lease_token = NULL, last_error = :message,
    errors = errors || jsonb_build_array(jsonb_build_object(
        'at', CAST(:now_iso AS text), 'attempt', attempts, 'error', CAST(:message AS text)))
WHERE id = :id AND state IN ('pending', 'claimed')
RETURNING id

-- name: dead_for_retry
-- The dead jobs a retry would put back, with what keeps each one's de-duplication key: a
-- live (queued or running) job holding it, and the job's rank among the dead ones of the
-- same key (only one per key may be live again: the latest, rank 1).
SELECT d.id, d.dedup_key, COALESCE(d.tenant_id, '') AS tenant,
       (SELECT l.id FROM tether_jobs l
        WHERE l.dedup_key = d.dedup_key AND COALESCE(l.tenant_id, '') = COALESCE(d.tenant_id, '')
          AND l.state IN ('pending', 'claimed')
        LIMIT 1) AS holder,
       row_number() OVER (PARTITION BY d.dedup_key, COALESCE(d.tenant_id, '')
                          ORDER BY d.seq DESC) AS nth
FROM tether_jobs d
WHERE d.state = 'dead'
  AND (CAST(:ids AS uuid[]) IS NULL OR d.id = ANY(CAST(:ids AS uuid[])))
  AND (CAST(:queue AS text) IS NULL OR d.queue = CAST(:queue AS text))
  AND (CAST(:name AS text) IS NULL OR d.name = CAST(:name AS text))
  AND (CAST(:tenant AS text) IS NULL OR d.tenant_id = CAST(:tenant AS text))
ORDER BY d.seq

-- name: tick
-- Exactly once per (schedule, tick): the first worker to insert the row enqueues the job in
-- the same transaction; the others find the row and do nothing.
INSERT INTO tether_job_ticks (schedule, tick, job_id, created_at)
VALUES (:schedule, :tick, :job_id, :now)
ON CONFLICT DO NOTHING
RETURNING job_id

-- name: dead_count
SELECT count(*) AS n FROM tether_jobs WHERE state = 'dead' AND last_error IS DISTINCT FROM :cancelled

-- name: result
SELECT result FROM tether_jobs WHERE id = :id
