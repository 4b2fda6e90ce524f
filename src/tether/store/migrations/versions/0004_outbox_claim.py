"""Outbox: no lease columns; only the indexes of the depth-independent claim on the insert path.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0004_outbox_claim.sql"))


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX tether_outbox_live;
        DROP INDEX tether_outbox_key_live;
        DROP INDEX tether_outbox_finished_id;
        ALTER TABLE tether_outbox ADD COLUMN lease_token uuid, ADD COLUMN worker text;
        ALTER TABLE tether_outbox DROP CONSTRAINT tether_outbox_state_check;
        ALTER TABLE tether_outbox ADD CONSTRAINT tether_outbox_state_check
            CHECK (state IN ('pending', 'claimed', 'done', 'dead'));
        ALTER TABLE tether_outbox ADD CONSTRAINT tether_outbox_id_key UNIQUE (id);
        ALTER TABLE tether_outbox ADD CONSTRAINT tether_outbox_pkey PRIMARY KEY (seq);
        CREATE INDEX tether_outbox_live ON tether_outbox (seq)
            WHERE state IN ('pending', 'claimed');
        CREATE INDEX tether_outbox_key_live ON tether_outbox (partition_key, seq)
            WHERE state IN ('pending', 'claimed') AND partition_key IS NOT NULL;
        """
    )
