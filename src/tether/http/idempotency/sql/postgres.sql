-- name: begin
-- Take the key if it is new, expired, or its lease ran out (same request only).
INSERT INTO tether_idempotency AS r
    (scope_key, tenant_id, fingerprint, state, lease_token, lease_expires_at, expires_at)
VALUES (:scope_key, :tenant_id, :fingerprint, 'in_flight', :token,
        now() + make_interval(secs => :lease_ttl), now() + make_interval(secs => :lease_ttl))
ON CONFLICT (scope_key) DO UPDATE SET
    tenant_id = EXCLUDED.tenant_id, fingerprint = EXCLUDED.fingerprint, state = 'in_flight',
    lease_token = EXCLUDED.lease_token, lease_expires_at = EXCLUDED.lease_expires_at,
    expires_at = EXCLUDED.expires_at, status_code = NULL, headers = NULL, body = NULL,
    created_at = now()
WHERE r.expires_at <= now()
   OR (r.state = 'in_flight' AND r.lease_expires_at <= now() AND r.fingerprint = EXCLUDED.fingerprint)
RETURNING lease_token

-- name: existing
SELECT fingerprint, state, status_code, headers, body,
       EXTRACT(EPOCH FROM lease_expires_at - now()) AS lease_left
FROM tether_idempotency
WHERE scope_key = :scope_key AND expires_at > now()

-- name: complete
UPDATE tether_idempotency
SET state = 'completed', status_code = :status_code, headers = CAST(:headers AS jsonb),
    body = :body, expires_at = now() + make_interval(secs => :record_ttl)
WHERE scope_key = :scope_key AND lease_token = :token
  AND (state = 'completed' OR lease_expires_at > now())
RETURNING 1

-- name: release
DELETE FROM tether_idempotency
WHERE scope_key = :scope_key AND lease_token = :token AND state = 'in_flight'

-- name: purge_expired
DELETE FROM tether_idempotency WHERE expires_at <= now()
