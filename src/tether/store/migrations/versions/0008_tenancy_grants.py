"""Tenant isolation for the outbox archive and capability grants: the tenant policy on
tether_outbox_archive, tether_authz_orgs, tether_authz_user_roles and
tether_authz_user_capabilities, switched by tether_tenancy() with the other tables (and turned
on here when tenancy already is).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

_TABLES = (
    "tether_authz_user_capabilities",
    "tether_authz_user_roles",
    "tether_authz_orgs",
    "tether_outbox_archive",
)


def upgrade() -> None:
    op.execute(read_sql("0008_tenancy_grants.sql"))


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY tether_tenant_isolation ON {table}")
    # tether_tenancy() as revision 0005 left it.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION tether_tenancy(enabled boolean) RETURNS void
            LANGUAGE plpgsql
            AS $$
        DECLARE
            t text;
        BEGIN
            FOREACH t IN ARRAY ARRAY['tether_outbox', 'tether_outbox_keys', 'tether_idempotency',
                    'tether_items'] LOOP
                EXECUTE 'ALTER TABLE ' || quote_ident(t)
                    || CASE WHEN enabled THEN ' ENABLE' ELSE ' DISABLE' END
                    || ' ROW LEVEL SECURITY';
            END LOOP;
        END
        $$;
        """
    )
