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
