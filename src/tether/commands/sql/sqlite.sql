-- What `tether status` and `tether dlq` read on SQLite. One statement each, so the figures
-- are one snapshot.

-- name: status
-- The SQLite relay holds its batch inside one write transaction, invisible to this reader, so
-- "in flight" counts the engine's 'claimed' state only.
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'claimed') AS in_flight,
       count(*) FILTER (WHERE state = 'pending' AND last_error IS NOT NULL) AS retrying,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       count(*) FILTER (WHERE state = 'done') AS done,
       min(created_at) FILTER (WHERE state IN ('pending', 'claimed')) AS oldest,
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') AS now,
       CASE WHEN :tenant IS NULL
            THEN coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'tether_outbox'), 0)
            ELSE 0 END AS last_seq
FROM tether_outbox
WHERE :tenant IS NULL OR tenant_id = :tenant

-- name: count
SELECT count(*) AS n FROM tether_outbox WHERE {where}
