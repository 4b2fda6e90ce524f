"""Outbox, inbox and generic work items.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0001_outbox.sql"))


def downgrade() -> None:
    op.execute("DROP TABLE tether_items, tether_inbox, tether_outbox_keys, tether_outbox")
