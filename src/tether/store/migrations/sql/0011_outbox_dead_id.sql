-- Event ids are indexed for dead letters only. Marking a published row 'done' (keep_published
-- in the hot table) put its random id into an index of every kept row: with 10 million kept
-- rows that index (383 MB) no longer fits in shared buffers, and every settled row read one of
-- its pages from outside them and wrote that page whole to the WAL after each checkpoint
-- (EXPLAIN at 10 million: 1,000 pages read and 1,000 full-page images per 1,000 rows settled,
-- none without it). Look-ups by id that an index serves name state = 'dead' (replay, purge);
-- retention reads finished rows through tether_outbox_finished (finished_at), which settling
-- appends to at its right edge. The new index is built before the old one goes.
CREATE INDEX tether_outbox_dead_id ON tether_outbox (id) WHERE state = 'dead';
DROP INDEX tether_outbox_finished_id;
