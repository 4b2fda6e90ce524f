"""Background jobs: tether_jobs, cron ticks (one row per schedule and tick), daily recoveries.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0007_jobs.sql"))


def downgrade() -> None:
    op.execute("DROP TABLE tether_job_recoveries")
    op.execute("DROP TABLE tether_job_ticks")
    op.execute("DROP TABLE tether_jobs")
