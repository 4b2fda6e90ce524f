"""Capability-based authorization.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from tether.store.migrations import read_sql

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0003_authz.sql"))


def downgrade() -> None:
    op.execute(
        "DROP TABLE tether_authz_version, tether_authz_user_capabilities, "
        "tether_authz_user_roles, tether_authz_role_capabilities, tether_authz_roles, "
        "tether_authz_orgs, tether_authz_users, tether_authz_capabilities"
    )
