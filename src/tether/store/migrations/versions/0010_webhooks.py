"""Outgoing webhooks: endpoints, deliveries (durable work items) and the attempt log.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0010_webhooks.sql"))


def downgrade() -> None:
    op.execute(
        "DROP TABLE tether_webhook_attempts; DROP TABLE tether_webhook_deliveries; "
        "DROP TABLE tether_webhook_endpoints"
    )
