-- What `tether doctor` reads on PostgreSQL.

-- name: relations
-- Tables (any kind: plain, partitioned) and indexes visible on the search path.
SELECT c.relname AS name, c.relkind::text AS kind, c.reloptions AS options,
       coalesce(i.indisvalid, true) AS valid
FROM pg_class c
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'i', 'I') AND c.relname LIKE 'tether\_%'
  AND pg_catalog.pg_table_is_visible(c.oid)

-- name: version_table
SELECT to_regclass('tether_alembic_version') IS NOT NULL AS present,
       to_regclass('tether_outbox') IS NOT NULL AS outbox

-- name: versions
SELECT version_num FROM tether_alembic_version ORDER BY 1

-- name: backlog
SELECT count(*) FILTER (WHERE state = 'dead') AS dead,
       min(created_at) FILTER (WHERE state = 'pending') AS oldest,
       now() AS now
FROM tether_outbox

-- name: dead_items
SELECT queue, count(*) AS dead FROM tether_items WHERE state = 'dead' GROUP BY queue ORDER BY queue

-- name: relays
-- The relay's sessions name themselves (application_name, tether.outbox.store_pg). An idle
-- relay polls several times a second, so its sessions' state changes all the time; a session
-- idle in a transaction for long is a batch stuck in a publish.
SELECT pid, state, now() - state_change AS quiet, client_addr::text AS addr
FROM pg_stat_activity
WHERE application_name = :application_name AND datname = current_database()

-- name: clock
SELECT clock_timestamp() AS now

-- name: probe_state
SELECT state, last_error FROM tether_outbox WHERE id = :id

-- name: remove_probe
DELETE FROM tether_outbox WHERE id = :id

-- name: runners
-- The runner registry (tether.ops.runners): every runner not stopped, and those stopped in the
-- last hour, with the database's clock.
SELECT kind, name, host, heartbeat_at, interval_s, stopped_at, now() AS now
FROM tether_runners
WHERE stopped_at IS NULL OR stopped_at >= now() - interval '1 hour'
ORDER BY heartbeat_at DESC
LIMIT 500
