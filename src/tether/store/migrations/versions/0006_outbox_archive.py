"""Outbox archive: published rows kept by the relay move to a table partitioned by month.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0006_outbox_archive.sql"))


def downgrade() -> None:
    # Dropping the parent drops every month's partition with it.
    op.execute("DROP TABLE tether_outbox_archive")
