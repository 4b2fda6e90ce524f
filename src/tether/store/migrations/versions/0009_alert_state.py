"""Dead-letter alert state: tether_alert_state, one row per source and alert channel with the
level already alerted, locked by the monitor while it sends.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0009_alert_state.sql"))


def downgrade() -> None:
    op.execute("DROP TABLE tether_alert_state")
