"""Idempotency-Key records for the HTTP edge.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0002_http.sql"))


def downgrade() -> None:
    op.execute("DROP TABLE tether_idempotency")
