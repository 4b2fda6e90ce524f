"""Tenant isolation: row-level security policies on the outbox, its idempotency keys, the
HTTP Idempotency-Key records and work items (which get a tenant_id), enabled by
``SELECT tether_tenancy(true)``.

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
        ALTER TABLE tether_items DISABLE ROW LEVEL SECURITY;
        ALTER TABLE tether_idempotency DISABLE ROW LEVEL SECURITY;
        ALTER TABLE tether_outbox_keys DISABLE ROW LEVEL SECURITY;
        ALTER TABLE tether_outbox DISABLE ROW LEVEL SECURITY;
        DROP POLICY tether_tenant_isolation ON tether_items;
        ALTER TABLE tether_items DROP COLUMN tenant_id;
        DROP POLICY tether_tenant_isolation ON tether_idempotency;
        DROP POLICY tether_tenant_isolation ON tether_outbox_keys;
        DROP POLICY tether_tenant_isolation ON tether_outbox;
        DROP FUNCTION tether_tenancy(boolean);
        DROP FUNCTION tether_set_tenant(text);
        DROP FUNCTION tether_tenant();
        """
    )
