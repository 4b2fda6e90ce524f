-- What `tether doctor` reads on SQLite.

-- name: relations
SELECT name, type AS kind FROM sqlite_master
WHERE type IN ('table', 'index') AND name LIKE 'tether\_%' ESCAPE '\'

-- name: backlog
SELECT sum(state = 'dead') AS dead,
       min(CASE WHEN state = 'pending' THEN created_at END) AS oldest,
       strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now') AS now
FROM tether_outbox

-- name: dead_items
SELECT queue, count(*) AS dead FROM tether_items WHERE state = 'dead' GROUP BY queue ORDER BY queue

-- name: probe_state
SELECT state, last_error FROM tether_outbox WHERE id = :id

-- name: remove_probe
DELETE FROM tether_outbox WHERE id = :id
