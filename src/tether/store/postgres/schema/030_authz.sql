-- Capability-based authorization: capabilities declared in code, roles, and grants per org.
-- A NULL org_id on a direct grant means every organization. Expired grants are kept until
-- revoked: decisions compare expiry with the clock, so explanations can say when they ended.

CREATE TABLE tether_authz_capabilities (
    name       text        PRIMARY KEY
               CHECK (name ~ '^[a-z][a-z0-9_-]{0,39}:([a-z][a-z0-9_-]{0,39}(:[a-z][a-z0-9_-]{0,39})?|\*)$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Users and organizations Tether may grant to; the application registers them.
CREATE TABLE tether_authz_users (
    id         text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tether_authz_orgs (
    id         text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tether_authz_roles (
    name       text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tether_authz_role_capabilities (
    role       text NOT NULL REFERENCES tether_authz_roles (name) ON DELETE CASCADE,
    capability text NOT NULL REFERENCES tether_authz_capabilities (name),
    PRIMARY KEY (role, capability)
);

CREATE TABLE tether_authz_user_roles (
    user_id    text        NOT NULL REFERENCES tether_authz_users (id) ON DELETE CASCADE,
    org_id     text        NOT NULL REFERENCES tether_authz_orgs (id) ON DELETE CASCADE,
    role       text        NOT NULL REFERENCES tether_authz_roles (name) ON DELETE CASCADE,
    expires_at timestamptz,
    granted_by text,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, org_id, role)
);

CREATE TABLE tether_authz_user_capabilities (
    user_id    text        NOT NULL REFERENCES tether_authz_users (id) ON DELETE CASCADE,
    org_id     text        REFERENCES tether_authz_orgs (id) ON DELETE CASCADE,
    capability text        NOT NULL REFERENCES tether_authz_capabilities (name),
    expires_at timestamptz,
    granted_by text,
    granted_at timestamptz NOT NULL DEFAULT now()
);
-- One grant per (user, org or global, capability); the expression makes NULL orgs collide too.
CREATE UNIQUE INDEX tether_authz_user_capabilities_key
    ON tether_authz_user_capabilities (user_id, (COALESCE(org_id, '')), capability);

-- Grows on every committed change: instances poll it when their LISTEN connection is down.
CREATE TABLE tether_authz_version (
    id    integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    value bigint  NOT NULL
);
INSERT INTO tether_authz_version (id, value) VALUES (1, 0);
