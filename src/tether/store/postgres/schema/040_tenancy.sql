-- Tenant isolation by row-level security, opt-in, on the outbox, add_event's idempotency keys,
-- the HTTP edge's Idempotency-Key records and work items. A transaction names its tenant with
-- tether_set_tenant(<tenant>) (tether.tenancy calls it; add_event folds it into its insert),
-- which sets the transaction-local tether.tenant_id. Once SELECT tether_tenancy(true) has
-- enabled row-level security, roles other than the tables' owner see and write only that
-- tenant's rows, and an unset or empty setting matches no row, so a forgotten scope fails
-- closed. The owner is not subject to the policies (RLS is enabled, not forced) and neither is
-- a role with BYPASSRLS: the relay and migrations run as one of those and see every tenant.
-- Until it is enabled the policies are inert, so upgrading changes nothing for applications
-- that do not use tenants.

-- The transaction's tenant, or NULL when none is set (an empty setting is what a session keeps
-- after a scoped transaction ended).
CREATE FUNCTION tether_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('tether.tenant_id', true), '') $$;

-- Scope the transaction to one tenant and return it. A transaction belongs to one tenant: a
-- second, different tenant is refused rather than letting one transaction read two tenants.
CREATE FUNCTION tether_set_tenant(tenant text) RETURNS text
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF tenant IS NULL OR tenant = '' THEN
        RAISE EXCEPTION 'tether: a tenant id is required' USING ERRCODE = '22023';
    END IF;
    IF tether_tenant() IS NOT NULL AND tether_tenant() <> tenant THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'tether: this transaction is scoped '
            || 'to tenant ' || tether_tenant() || ', not ' || tenant;
    END IF;
    RETURN set_config('tether.tenant_id', tenant, true);
END
$$;

CREATE POLICY tether_tenant_isolation ON tether_outbox
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());
CREATE POLICY tether_tenant_isolation ON tether_outbox_keys
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());
CREATE POLICY tether_tenant_isolation ON tether_idempotency
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());

-- A work item belongs to the tenant of the transaction that enqueues it (NULL when unscoped,
-- which row-level security refuses for a role subject to it). Workers run as the owner.
ALTER TABLE tether_items ADD COLUMN tenant_id text DEFAULT tether_tenant();
CREATE POLICY tether_tenant_isolation ON tether_items
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());

-- Turn row-level security on (true) or off (false) on every table with a tenant policy. Run it
-- as the tables' owner: SELECT tether_tenancy(true);
-- (No percent signs in this file: drivers that take pyformat parameters would read them.)
CREATE FUNCTION tether_tenancy(enabled boolean) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tether_outbox', 'tether_outbox_keys', 'tether_idempotency',
            'tether_items'] LOOP
        EXECUTE 'ALTER TABLE ' || quote_ident(t)
            || CASE WHEN enabled THEN ' ENABLE' ELSE ' DISABLE' END || ' ROW LEVEL SECURITY';
    END LOOP;
END
$$;
