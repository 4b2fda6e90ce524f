"""Tenant isolation for background jobs and webhooks: tether_jobs.tenant_id (the enqueuing
transaction's tenant) with a per-tenant de-duplication key, and the tenant policy on
tether_jobs and the three webhook tables, switched by tether_tenancy() with the other tables
(and turned on here when tenancy already is).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None

_TABLES = (
    "tether_webhook_attempts",
    "tether_webhook_deliveries",
    "tether_webhook_endpoints",
    "tether_jobs",
)


def upgrade() -> None:
    op.execute(read_sql("0014_tenancy_jobs_webhooks.sql"))


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY tether_tenant_isolation ON {table}")
    op.execute("DROP INDEX tether_jobs_dedup")
    op.execute("ALTER TABLE tether_jobs DROP COLUMN tenant_id")
    op.execute(
        "CREATE UNIQUE INDEX tether_jobs_dedup ON tether_jobs (dedup_key)"
        " WHERE dedup_key IS NOT NULL AND state IN ('pending', 'claimed')"
    )
    # tether_tenancy() as revision 0008 left it.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION tether_tenancy(enabled boolean) RETURNS void
            LANGUAGE plpgsql
            AS $$
        DECLARE
            t text;
        BEGIN
            FOREACH t IN ARRAY ARRAY['tether_outbox', 'tether_outbox_keys', 'tether_idempotency',
                    'tether_items', 'tether_outbox_archive', 'tether_authz_orgs',
                    'tether_authz_user_roles', 'tether_authz_user_capabilities'] LOOP
                EXECUTE 'ALTER TABLE ' || quote_ident(t)
                    || CASE WHEN enabled THEN ' ENABLE' ELSE ' DISABLE' END
                    || ' ROW LEVEL SECURITY';
            END LOOP;
        END
        $$;
        """
    )
