-- Idempotency-Key records (tether.http.idempotency). One row per (tenant, principal, method,
-- route, key), hashed into scope_key. An in_flight row holds a lease that expires on its own,
-- so a crashed worker never blocks a key for longer than the lease.

CREATE TABLE tether_idempotency (
    scope_key        text        PRIMARY KEY,
    tenant_id        text        NOT NULL DEFAULT '',
    fingerprint      text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('in_flight', 'completed')),
    lease_token      text        NOT NULL,
    lease_expires_at timestamptz NOT NULL,
    status_code      integer,
    headers          jsonb,
    body             bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX tether_idempotency_expires ON tether_idempotency (expires_at);
