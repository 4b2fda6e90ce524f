"""Outbox: event ids indexed for dead rows only, so marking a row done touches no random index.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0011_outbox_dead_id.sql"))


def downgrade() -> None:
    op.execute(
        """
        CREATE INDEX tether_outbox_finished_id ON tether_outbox (id)
            WHERE state IN ('done', 'dead');
        DROP INDEX tether_outbox_dead_id;
        """
    )
