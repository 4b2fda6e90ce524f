-- Outgoing webhooks on PostgreSQL: endpoints, fan-out, the attempt log. Deliveries are claimed,
-- retried, dead-lettered and replayed by the work-item engine (tether.queue) over their table.
-- Every endpoint and log query names the tenant: one tenant never reads another's rows.

-- name: fan_out
-- One statement per relay batch: every event joined with the enabled endpoints of its tenant
-- whose filters match its type ('*' = all, 'Order*' = prefix, else exact). A re-run of the same
-- event (the relay's transaction rolled back after a crash) finds its rows and adds none.
INSERT INTO tether_webhook_deliveries
    (id, queue, available_at, created_at, payload, tenant_id, endpoint_id, event_id, event_type,
     max_attempts)
SELECT gen_random_uuid(), e.priority, :now, :now, CAST(ev.body AS json), e.tenant_id, e.id,
       ev.id, ev.type, :max_attempts
FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:tenants AS text[]),
            CAST(:bodies AS text[])) WITH ORDINALITY AS ev(id, type, tenant, body, ord)
JOIN tether_webhook_endpoints e ON e.tenant_id = ev.tenant AND e.enabled
WHERE ev.type = ANY(e.filters)
   OR EXISTS (SELECT 1 FROM unnest(e.filters) AS f(pattern)
              WHERE right(f.pattern, 1) = '*' AND starts_with(ev.type, left(f.pattern, -1)))
ORDER BY ev.ord, e.id
ON CONFLICT (event_id, endpoint_id) DO NOTHING

-- name: endpoint_insert
INSERT INTO tether_webhook_endpoints
    (id, tenant_id, url, description, filters, enabled, priority, rate_limit, concurrency,
     headers, secrets, created_at, updated_at)
VALUES (:id, :tenant_id, :url, :description, :filters, :enabled, :priority, :rate_limit,
        :concurrency, CAST(:headers AS jsonb), CAST(:secrets AS jsonb), :now, :now)

-- name: endpoint_get
SELECT * FROM tether_webhook_endpoints WHERE id = :id AND tenant_id = :tenant_id

-- name: endpoint_get_any
-- The dispatcher's read: it serves every tenant.
SELECT * FROM tether_webhook_endpoints WHERE id = :id

-- name: endpoint_list
SELECT * FROM tether_webhook_endpoints WHERE tenant_id = :tenant_id
ORDER BY created_at, id LIMIT :limit OFFSET :offset

-- name: endpoint_update
UPDATE tether_webhook_endpoints
SET url = :url, description = :description, filters = :filters, enabled = :enabled,
    disabled_reason = :disabled_reason, priority = :priority, rate_limit = :rate_limit,
    concurrency = :concurrency, headers = CAST(:headers AS jsonb),
    secrets = CAST(:secrets AS jsonb), failing_since = :failing_since, updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id
RETURNING *

-- name: endpoint_delete
DELETE FROM tether_webhook_endpoints WHERE id = :id AND tenant_id = :tenant_id

-- name: attempts_delete_endpoint
DELETE FROM tether_webhook_attempts WHERE endpoint_id = :id AND tenant_id = :tenant_id

-- name: endpoint_disable
-- Returns the row only when this call disabled it, so the tenant is told once.
UPDATE tether_webhook_endpoints
SET enabled = false, disabled_reason = :reason, updated_at = :now
WHERE id = :id AND enabled
RETURNING id, tenant_id, url

-- name: endpoint_failing
-- The first failure since the last success starts the clock; later ones keep it.
UPDATE tether_webhook_endpoints SET failing_since = COALESCE(failing_since, :now)
WHERE id = :id
RETURNING failing_since

-- name: endpoint_recovered
UPDATE tether_webhook_endpoints SET failing_since = NULL
WHERE id = :id AND failing_since IS NOT NULL

-- name: deliveries_heartbeat
-- Renews the leases a live dispatcher holds, in one statement; a lease taken over meanwhile
-- (token changed) is left alone and simply not returned.
UPDATE tether_webhook_deliveries t SET available_at = :lease_until
FROM unnest(CAST(:seqs AS bigint[]), CAST(:tokens AS uuid[])) AS u(seq, token)
WHERE t.seq = u.seq AND t.lease_token = u.token AND t.state = 'claimed'
RETURNING t.seq

-- name: attempts_insert
INSERT INTO tether_webhook_attempts
    (delivery_id, endpoint_id, tenant_id, event_id, attempt, at, outcome, status_code,
     latency_ms, response, error)
SELECT * FROM unnest(CAST(:delivery_ids AS uuid[]), CAST(:endpoint_ids AS uuid[]),
                     CAST(:tenant_ids AS text[]), CAST(:event_ids AS uuid[]),
                     CAST(:attempts AS integer[]), CAST(:ats AS timestamptz[]),
                     CAST(:outcomes AS text[]), CAST(:status_codes AS integer[]),
                     CAST(:latencies AS double precision[]), CAST(:responses AS text[]),
                     CAST(:errors AS text[]))

-- name: attempts_list
-- Every filter is optional (NULL: any); newest first.
SELECT a.* FROM tether_webhook_attempts a
WHERE a.tenant_id = :tenant_id
  AND (CAST(:endpoint_id AS uuid) IS NULL OR a.endpoint_id = :endpoint_id)
  AND (CAST(:event_id AS uuid) IS NULL OR a.event_id = :event_id)
  AND (CAST(:delivery_id AS uuid) IS NULL OR a.delivery_id = :delivery_id)
  AND (CAST(:outcome AS text) IS NULL OR a.outcome = :outcome)
  AND (CAST(:since AS timestamptz) IS NULL OR a.at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR a.at < :until)
ORDER BY a.id DESC LIMIT :limit

-- name: delivery_replay
-- A finished delivery (done or dead) goes again with fresh attempts and its own id, so the
-- receiver sees the same webhook-id. The error history is kept.
UPDATE tether_webhook_deliveries
SET state = 'pending', attempts = 0, available_at = :now, finished_at = NULL,
    lease_token = NULL
WHERE id = :id AND tenant_id = :tenant_id AND state IN ('done', 'dead')

