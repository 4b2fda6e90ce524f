-- Tenant isolation by row-level security. A transaction names its tenant with
-- set_config('tether.tenant_id', <tenant>, true) (tether.tenancy does it); roles other than the
-- tables' owner then see and write only that tenant's rows. An unset or empty setting matches
-- no row, so a forgotten scope fails closed. The owner is not subject to the policies (RLS is
-- enabled, not forced) and neither is a role with BYPASSRLS: the relay and migrations run as
-- one of those and see every tenant.

CREATE FUNCTION tether_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('tether.tenant_id', true), '') $$;

ALTER TABLE tether_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY tether_tenant_isolation ON tether_outbox
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());

ALTER TABLE tether_outbox_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tether_tenant_isolation ON tether_outbox_keys
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());
