-- Hot-path reads on PostgreSQL, run straight on asyncpg (3x less client CPU than through the
-- SQLAlchemy layer; measured in benchmarks/authz_checks.py). Writes stay on SQLAlchemy so they
-- join the caller's session.

-- name: load_grants
-- Direct grants and capabilities reached through role assignments; expired ones included,
-- the decision compares expiry with its own clock.
SELECT capability, org_id, expires_at, NULL::text AS role
FROM tether_authz_user_capabilities
WHERE user_id = :user
UNION ALL
SELECT rc.capability, ur.org_id, ur.expires_at, ur.role
FROM tether_authz_user_roles ur
JOIN tether_authz_role_capabilities rc ON rc.role = ur.role
WHERE ur.user_id = :user

-- name: load_grants_in_tenant
-- With tenancy on: the grants in one org (the tenant). The function scopes the transaction to
-- the tenant and then reads, in one round trip (schema 055_tenancy_grants_archive.sql).
SELECT capability, org_id, expires_at, role FROM tether_authz_grants_in(:user, :tenant)

-- name: version
SELECT value FROM tether_authz_version WHERE id = 1
