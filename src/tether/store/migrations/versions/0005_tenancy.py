"""Tenant isolation: row-level security on the outbox and its idempotency keys.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0005_tenancy.sql"))


def downgrade() -> None:
    op.execute(
        """
        DROP POLICY tether_tenant_isolation ON tether_outbox_keys;
        ALTER TABLE tether_outbox_keys DISABLE ROW LEVEL SECURITY;
        DROP POLICY tether_tenant_isolation ON tether_outbox;
        ALTER TABLE tether_outbox DISABLE ROW LEVEL SECURITY;
        DROP FUNCTION tether_tenant();
        """
    )
