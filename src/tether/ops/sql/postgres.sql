-- The dead-letter monitor's alert state (tether.ops.alerts_state) on PostgreSQL.

-- name: ensure
INSERT INTO tether_alert_state (source, channel) VALUES (:source, :channel)
ON CONFLICT (source, channel) DO NOTHING

-- name: hold
-- SKIP LOCKED: while one monitor decides and sends for a source and channel, another skips
-- them for this round instead of waiting, so a slow channel stalls no one and a level is
-- never sent by two monitors.
SELECT level, generation FROM tether_alert_state
WHERE source = :source AND channel = :channel
FOR UPDATE SKIP LOCKED

-- name: save
UPDATE tether_alert_state
SET level = :level, generation = generation + 1, updated_at = now()
WHERE source = :source AND channel = :channel

-- The runner registry (tether.ops.runners) on PostgreSQL.

-- name: runner_register
INSERT INTO tether_runners (id, kind, name, host, pid, started_at, heartbeat_at, interval_s, stats)
VALUES (:id, :kind, :name, :host, :pid, :now, :now, :interval_s, :stats::jsonb)

-- name: runner_beat
-- The previous stats come back with the kind: the increases since them go to the minutes.
WITH old AS (SELECT id, stats FROM tether_runners WHERE id = :id FOR UPDATE)
UPDATE tether_runners r SET heartbeat_at = :now, stats = :stats::jsonb
FROM old WHERE r.id = old.id
RETURNING r.kind, old.stats::text AS before

-- name: runner_stop
WITH old AS (SELECT id, stats FROM tether_runners WHERE id = :id FOR UPDATE)
UPDATE tether_runners r SET heartbeat_at = :now, stopped_at = :now, stats = :stats::jsonb
FROM old WHERE r.id = old.id
RETURNING r.kind, old.stats::text AS before

-- name: runner_minute
-- Keys in order, so that runners of one kind beating at once lock its rows in the same order.
INSERT INTO tether_runner_minutes AS t (minute, kind, key, increase, high)
SELECT :minute, :kind, u.key, u.increase, u.high
FROM unnest(:keys::text[], :increases::float8[], :highs::float8[]) AS u (key, increase, high)
ORDER BY u.key
ON CONFLICT (minute, kind, key) DO UPDATE
SET increase = t.increase + excluded.increase, high = greatest(t.high, excluded.high)

-- name: runner_point
-- Two beats in the same microsecond (a frozen clock in tests) keep the later stats.
INSERT INTO tether_runner_beats (runner_id, at, stats) VALUES (:id, :now, :stats::jsonb)
ON CONFLICT (runner_id, at) DO UPDATE SET stats = excluded.stats

-- name: runner_list
-- Runners still beating (alive or late) and those heard of within the window.
SELECT id, kind, name, host, pid, started_at, heartbeat_at, interval_s, stopped_at, stats::text
FROM tether_runners
WHERE coalesce(stopped_at, heartbeat_at) >= :cutoff
   OR (stopped_at IS NULL AND heartbeat_at >= :now::timestamptz - make_interval(secs => 6 * interval_s))
ORDER BY kind, started_at DESC

-- name: runner_history
-- Per bucket, kind and stat: for a counter (name ending in _total) the sum of its increases
-- between each runner's consecutive beats (a counter below its previous value was reset by a
-- restart: its whole value is the increase), per second; for a gauge its highest value. Each
-- beat is paired with its runner's previous one (lag over the primary key's order, so no
-- sort); the first beat inside the window with the runner's last beat before it.
WITH paired AS (
    SELECT r.kind, b.at, b.stats,
           coalesce(
               lag(b.stats) OVER (PARTITION BY b.runner_id ORDER BY b.at),
               (SELECT p.stats FROM tether_runner_beats p
                WHERE p.runner_id = b.runner_id AND p.at < :since
                ORDER BY p.runner_id DESC, p.at DESC LIMIT 1)
           ) AS before
    FROM tether_runner_beats b JOIN tether_runners r ON r.id = b.runner_id
    WHERE b.at >= :since
)
SELECT to_timestamp(floor(extract(epoch FROM at) / :bucket_s::int) * :bucket_s::int) AS at,
       kind, s.key, right(s.key, 6) = '_total' AS counter,
       CASE WHEN right(s.key, 6) = '_total'
            THEN sum(CASE WHEN before ->> s.key IS NULL THEN 0
                          WHEN s.value::float8 >= (before ->> s.key)::float8
                          THEN s.value::float8 - (before ->> s.key)::float8
                          ELSE s.value::float8 END) / :bucket_s::int
            ELSE max(s.value::float8) END AS value
FROM paired CROSS JOIN LATERAL jsonb_each_text(paired.stats) s
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3

-- name: runner_history_minutes
-- The same answer as runner_history, from the per-minute rows, for buckets of whole minutes.
SELECT to_timestamp(floor(extract(epoch FROM minute) / :bucket_s::int) * :bucket_s::int) AS at,
       kind, key, right(key, 6) = '_total' AS counter,
       CASE WHEN right(key, 6) = '_total' THEN sum(increase) / :bucket_s::int
            ELSE max(high) END AS value
FROM tether_runner_minutes
WHERE minute >= :since
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3

-- name: runner_rebuild_minutes
-- tether_runner_minutes from :since recomputed from the beats, as beat() would have kept it
-- (after beats were written some other way: loaded for a benchmark, restored). The caller
-- deletes those minutes first, in the same transaction.
WITH paired AS (
    SELECT r.kind, b.at, b.stats,
           coalesce(
               lag(b.stats) OVER (PARTITION BY b.runner_id ORDER BY b.at),
               (SELECT p.stats FROM tether_runner_beats p
                WHERE p.runner_id = b.runner_id AND p.at < :since
                ORDER BY p.runner_id DESC, p.at DESC LIMIT 1)
           ) AS before
    FROM tether_runner_beats b JOIN tether_runners r ON r.id = b.runner_id
    WHERE b.at >= :since
)
INSERT INTO tether_runner_minutes (minute, kind, key, increase, high)
SELECT to_timestamp(floor(extract(epoch FROM at) / 60) * 60), kind, s.key,
       CASE WHEN right(s.key, 6) = '_total'
            THEN sum(CASE WHEN before ->> s.key IS NULL THEN 0
                          WHEN s.value::float8 >= (before ->> s.key)::float8
                          THEN s.value::float8 - (before ->> s.key)::float8
                          ELSE s.value::float8 END) END,
       CASE WHEN right(s.key, 6) <> '_total' THEN max(s.value::float8) END
FROM paired CROSS JOIN LATERAL jsonb_each_text(paired.stats) s
GROUP BY 1, 2, 3

-- name: runner_prune_minutes
DELETE FROM tether_runner_minutes
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM tether_runner_minutes WHERE minute < :cutoff LIMIT :batch
))

-- name: runner_prune_beats
-- At most :batch rows per statement (the caller loops), so pruning a backlog holds no long
-- transaction; the rows are found on the index on at.
DELETE FROM tether_runner_beats
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM tether_runner_beats WHERE at < :cutoff LIMIT :batch
))

-- name: runner_prune_runners
-- Their points go with them (ON DELETE CASCADE).
DELETE FROM tether_runners WHERE coalesce(stopped_at, heartbeat_at) < :cutoff
