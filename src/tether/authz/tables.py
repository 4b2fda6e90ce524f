"""The authorization tables as SQLAlchemy Core objects, shared by the Postgres and SQLite adapter.

Core compiles one statement per dialect, so both backends share every query; the DDL lives
in ``tether/store/postgres/schema/030_authz.sql`` and ``tether/store/sqlite/schema/030_authz.sql``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text

metadata = MetaData()
_TS = DateTime(timezone=True)

capabilities = Table("tether_authz_capabilities", metadata, Column("name", Text, primary_key=True))
users = Table("tether_authz_users", metadata, Column("id", Text, primary_key=True))
orgs = Table("tether_authz_orgs", metadata, Column("id", Text, primary_key=True))
roles = Table("tether_authz_roles", metadata, Column("name", Text, primary_key=True))
role_capabilities = Table(
    "tether_authz_role_capabilities",
    metadata,
    Column("role", Text, primary_key=True),
    Column("capability", Text, primary_key=True),
)
user_roles = Table(
    "tether_authz_user_roles",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("org_id", Text, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("expires_at", _TS),
    Column("granted_by", Text),
    Column("granted_at", _TS),
)
user_capabilities = Table(
    "tether_authz_user_capabilities",
    metadata,
    Column("user_id", Text),
    Column("org_id", Text),
    Column("capability", Text),
    Column("expires_at", _TS),
    Column("granted_by", Text),
    Column("granted_at", _TS),
)
version = Table(
    "tether_authz_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger),
)
