-- Dead-letter alert state (tether.ops.alerts_state): per source and alert channel, the highest
-- dead count already alerted ("alert on increase, reset when zero"). A monitor holds the row
-- locked while it sends, so several monitors or a restarted one never send a level twice.
-- generation counts changes: an alert's id is its source, channel and next generation.

CREATE TABLE tether_alert_state (
    source     text        NOT NULL,
    channel    text        NOT NULL,
    level      bigint      NOT NULL DEFAULT 0 CHECK (level >= 0),
    generation bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, channel)
);
