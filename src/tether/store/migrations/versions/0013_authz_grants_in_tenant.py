"""tether_authz_grants_in(user, tenant): one tenant's grants of a user in one round trip, with
the transaction scoped to the tenant first (row-level security), for Authz(tenancy=True).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0013_authz_grants_in_tenant.sql"))


def downgrade() -> None:
    op.execute("DROP FUNCTION tether_authz_grants_in(text, text)")
