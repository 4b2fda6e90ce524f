-- The outbox is never leased (the relay's row locks are its lease): no lease columns, no
-- 'claimed' state. Its claim reads pending rows in seq order and by (partition_key, seq),
-- unkeyed rows included; event ids are indexed for finished rows only and seq (an identity)
-- needs no primary key, so a producer's insert maintains two pending-only indexes.
DROP INDEX tether_outbox_live;
DROP INDEX tether_outbox_key_live;
ALTER TABLE tether_outbox DROP CONSTRAINT tether_outbox_id_key;
ALTER TABLE tether_outbox DROP CONSTRAINT tether_outbox_pkey;
UPDATE tether_outbox SET state = 'pending' WHERE state = 'claimed';
ALTER TABLE tether_outbox DROP CONSTRAINT tether_outbox_state_check;
ALTER TABLE tether_outbox ADD CONSTRAINT tether_outbox_state_check
    CHECK (state IN ('pending', 'done', 'dead'));
ALTER TABLE tether_outbox DROP COLUMN lease_token, DROP COLUMN worker;
CREATE INDEX tether_outbox_live ON tether_outbox (seq) WHERE state = 'pending';
CREATE INDEX tether_outbox_key_live ON tether_outbox (partition_key, seq) WHERE state = 'pending';
CREATE INDEX tether_outbox_finished_id ON tether_outbox (id) WHERE state IN ('done', 'dead');
