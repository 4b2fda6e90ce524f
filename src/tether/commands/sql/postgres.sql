-- What `tether status` and `tether dlq` read on PostgreSQL. One statement each, so the
-- figures are one snapshot.

-- name: status
-- On PostgreSQL the relay's lease is a row lock held by its open transaction, so "in flight"
-- is a pending row whose xmax is a transaction still running (locked or being deleted now),
-- plus rows in the engine's 'claimed' state. A transaction is running if the snapshot lists
-- it (xip) or if it is at or just past the snapshot's xmax (ids compared in their low 32 bits,
-- modulo 2^32, as xmax holds them).
WITH snap AS (SELECT pg_current_snapshot() AS s), busy AS (
    SELECT coalesce((SELECT array_agg((x::text::bigint % 4294967296)::text)
                     FROM pg_snapshot_xip(snap.s) AS x), '{}') AS xids,
           pg_snapshot_xmax(snap.s)::text::bigint % 4294967296 AS horizon
    FROM snap
), rows AS (
    SELECT o.state, o.last_error, o.created_at,
           (o.state = 'claimed' OR (o.state = 'pending' AND o.xmax::text <> '0' AND (
                o.xmax::text = ANY(busy.xids)
                OR (o.xmax::text::bigint - busy.horizon + 4294967296) % 4294967296 < 1000000
           ))) AS busy
    FROM tether_outbox o CROSS JOIN busy
    WHERE CAST(:tenant AS text) IS NULL OR o.tenant_id = CAST(:tenant AS text)
)
SELECT count(*) FILTER (WHERE state = 'pending' AND NOT busy) AS pending,
       count(*) FILTER (WHERE busy) AS in_flight,
       count(*) FILTER (WHERE state = 'pending' AND NOT busy AND last_error IS NOT NULL) AS retrying,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       count(*) FILTER (WHERE state = 'done') AS done,
       min(created_at) FILTER (WHERE state IN ('pending', 'claimed')) AS oldest,
       now() AS now,
       -- The sequence counts every tenant's events: it is not read (NULL: no rates) for one
       -- tenant, nor by a role under row-level security or without the right to read it (an
       -- application role: it must not learn every tenant's volume, and could not anyway).
       CASE WHEN CAST(:tenant AS text) IS NULL AND NOT row_security_active('tether_outbox')
                 AND has_sequence_privilege(pg_get_serial_sequence('tether_outbox', 'seq'),
                                            'SELECT, USAGE')
            THEN (SELECT coalesce(pg_sequence_last_value(
                pg_get_serial_sequence('tether_outbox', 'seq')), 0)) END AS last_seq
FROM rows

-- name: count
SELECT count(*) AS n FROM tether_outbox WHERE {where}
