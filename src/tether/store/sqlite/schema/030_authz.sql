-- Authorization: capabilities, users, orgs, roles and grants (see postgres/schema/030_authz.sql).
-- Times are ISO-8601 text, as SQLAlchemy's DateTime stores them on SQLite.
CREATE TABLE IF NOT EXISTS tether_authz_capabilities (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tether_authz_users (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tether_authz_orgs (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tether_authz_roles (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tether_authz_role_capabilities (
    role TEXT NOT NULL REFERENCES tether_authz_roles (name) ON DELETE CASCADE,
    capability TEXT NOT NULL REFERENCES tether_authz_capabilities (name),
    PRIMARY KEY (role, capability));
CREATE TABLE IF NOT EXISTS tether_authz_user_roles (
    user_id TEXT NOT NULL REFERENCES tether_authz_users (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES tether_authz_orgs (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES tether_authz_roles (name) ON DELETE CASCADE,
    expires_at DATETIME, granted_by TEXT, granted_at DATETIME,
    PRIMARY KEY (user_id, org_id, role));
CREATE TABLE IF NOT EXISTS tether_authz_user_capabilities (
    user_id TEXT NOT NULL REFERENCES tether_authz_users (id) ON DELETE CASCADE,
    org_id TEXT REFERENCES tether_authz_orgs (id) ON DELETE CASCADE,
    capability TEXT NOT NULL REFERENCES tether_authz_capabilities (name),
    expires_at DATETIME, granted_by TEXT, granted_at DATETIME);
CREATE UNIQUE INDEX IF NOT EXISTS tether_authz_user_capabilities_key
    ON tether_authz_user_capabilities (user_id, COALESCE(org_id, ''), capability);
CREATE TABLE IF NOT EXISTS tether_authz_version (
    id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO tether_authz_version (id, value) VALUES (1, 0);
