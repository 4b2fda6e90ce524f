-- Tenant isolation, continued: the outbox archive and capability grants get the tenant policy
-- of 040_tenancy.sql, and tether_tenancy(enabled) switches them with the rest.
--
-- The archive holds published events of every tenant; its policy is the hot table's, so a
-- session scoped to a tenant reads, copies back (replays) and deletes only that tenant's
-- archived events, and an unscoped one none. The policy sits on the partitioned parent, which
-- is what the application role is granted; its months are separate tables that nobody but the
-- owner should be granted (a query naming a partition directly does not pass through the
-- parent's policy). The relay moves rows in as the owner, so settling is unaffected.
CREATE POLICY tether_tenant_isolation ON tether_outbox_archive
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());

-- Capability grants: an organization IS a tenant (docs/tenancy.md), so a grant's org_id is its
-- tenant id and no second column can disagree with it. A role assignment or a direct grant is
-- visible and writable only in a transaction scoped to its org; a direct grant to every org
-- (org_id NULL) matches no tenant, so a role subject to row-level security neither sees nor
-- writes one: platform-wide grants are the owner's. The org's own row follows the same rule.
-- Users, roles, role definitions and capability names stay shared: they name principals and
-- what a role means, not who holds what where.
CREATE POLICY tether_tenant_isolation ON tether_authz_orgs
    USING (id = tether_tenant()) WITH CHECK (id = tether_tenant());
CREATE POLICY tether_tenant_isolation ON tether_authz_user_roles
    USING (org_id = tether_tenant()) WITH CHECK (org_id = tether_tenant());
CREATE POLICY tether_tenant_isolation ON tether_authz_user_capabilities
    USING (org_id = tether_tenant()) WITH CHECK (org_id = tether_tenant());

-- Turn row-level security on (true) or off (false) on every table with a tenant policy. Run it
-- as the tables' owner: SELECT tether_tenancy(true);
-- (No percent signs in this file: drivers that take pyformat parameters would read them.)
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
            || CASE WHEN enabled THEN ' ENABLE' ELSE ' DISABLE' END || ' ROW LEVEL SECURITY';
    END LOOP;
END
$$;

-- One tenant's grants of a user, read in one round trip: Authz(tenancy=True)'s cache misses.
-- The first statement scopes the transaction (the caller's, or the statement's own when it
-- runs alone), so the read, planned and run after it, passes the policies above. SECURITY
-- INVOKER (the default): row-level security applies to the caller as to any query of theirs.
-- The org filter is explicit too, so a role that bypasses row-level security reads the same.
CREATE FUNCTION tether_authz_grants_in(who text, tenant text)
    RETURNS TABLE (capability text, org_id text, expires_at timestamptz, role text)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM tether_set_tenant(tenant);
    RETURN QUERY
        SELECT uc.capability, uc.org_id, uc.expires_at, NULL::text
        FROM tether_authz_user_capabilities uc
        WHERE uc.user_id = who AND uc.org_id = tenant
        UNION ALL
        SELECT rc.capability, ur.org_id, ur.expires_at, ur.role
        FROM tether_authz_user_roles ur
        JOIN tether_authz_role_capabilities rc ON rc.role = ur.role
        WHERE ur.user_id = who AND ur.org_id = tenant;
END
$$;
