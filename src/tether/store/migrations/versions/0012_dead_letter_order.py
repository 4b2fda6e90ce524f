"""Dead letters indexed newest first per table (outbox, jobs, webhook deliveries): the dashboard.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0012_dead_letter_order.sql"))


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX tether_webhook_deliveries_dead;
        DROP INDEX tether_jobs_dead;
        DROP INDEX tether_outbox_dead;
        """
    )
