-- Tenant isolation, continued: background jobs and outgoing webhooks get the tenant policy of
-- 040_tenancy.sql, and tether_tenancy(enabled) switches them with the rest.
--
-- A job belongs to the tenant of the transaction that enqueues it, as a work item does (NULL
-- when unscoped, which row-level security refuses for a role subject to it). Workers run as
-- the owner, see every tenant's jobs and scope each transactional job's own transaction to the
-- job's tenant. A de-duplication key is unique per tenant: one tenant's key neither blocks
-- nor reveals another's.
ALTER TABLE tether_jobs ADD COLUMN tenant_id text DEFAULT tether_tenant();
CREATE POLICY tether_tenant_isolation ON tether_jobs
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());
DROP INDEX tether_jobs_dedup;
CREATE UNIQUE INDEX tether_jobs_dedup ON tether_jobs (dedup_key, COALESCE(tenant_id, ''))
    WHERE dedup_key IS NOT NULL AND state IN ('pending', 'claimed');
-- tether_job_ticks and tether_job_recoveries get no policy: cron ticks are the workers'
-- (schedules are code, their jobs are enqueued unscoped) and recoveries are counts per queue
-- over every tenant. Both are operator data that the application role is not granted.

-- Webhooks: endpoints, deliveries and attempts already carry tenant_id ('' for none). A
-- tenant's session sees and manages only its own; '' matches no tenant, so endpoints of no
-- tenant are the owner's. The fan-out (the relay's transaction) and the dispatcher run as the
-- owner and see every tenant.
CREATE POLICY tether_tenant_isolation ON tether_webhook_endpoints
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());
CREATE POLICY tether_tenant_isolation ON tether_webhook_deliveries
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());
CREATE POLICY tether_tenant_isolation ON tether_webhook_attempts
    USING (tenant_id = tether_tenant()) WITH CHECK (tenant_id = tether_tenant());

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
            'tether_authz_user_roles', 'tether_authz_user_capabilities', 'tether_jobs',
            'tether_webhook_endpoints', 'tether_webhook_deliveries',
            'tether_webhook_attempts'] LOOP
        EXECUTE 'ALTER TABLE ' || quote_ident(t)
            || CASE WHEN enabled THEN ' ENABLE' ELSE ' DISABLE' END || ' ROW LEVEL SECURITY';
    END LOOP;
END
$$;
