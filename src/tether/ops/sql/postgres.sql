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
