-- Dead letters in the order an operator reads them (newest first, tether.dashboard): a partial
-- index per table over dead rows only. The finished_at indexes also hold every done row, so a
-- page of dead jobs read through tether_jobs_finished walked past all the done jobs first (a
-- million done jobs: a million index entries per page). Rows enter these indexes only when they
-- go dead, so the hot paths (enqueue, claim, settle) pay nothing.
CREATE INDEX tether_outbox_dead ON tether_outbox (finished_at, seq) WHERE state = 'dead';
CREATE INDEX tether_jobs_dead ON tether_jobs (finished_at, seq) WHERE state = 'dead';
CREATE INDEX tether_webhook_deliveries_dead ON tether_webhook_deliveries (finished_at, seq)
    WHERE state = 'dead';
