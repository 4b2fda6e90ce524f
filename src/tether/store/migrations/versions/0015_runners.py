"""Runner registry: tether_runners, one row per relay, worker, dispatcher, gateway or consumer
with its last heartbeat, tether_runner_beats, the history of its counters, and
tether_runner_minutes, each kind's stats per minute.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0015_runners.sql"))


def downgrade() -> None:
    op.execute("DROP TABLE tether_runner_minutes")
    op.execute("DROP TABLE tether_runner_beats")
    op.execute("DROP TABLE tether_runners")
