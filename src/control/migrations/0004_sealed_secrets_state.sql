-- External tenant databases, credentials sealed at rest, tenants' secrets and endpoints' state.
-- `sealed` holds, encrypted with the deployment's sealing key: for a managed database the
-- role's password, for an external one its URL. `password` is only read to seal rows written
-- before this migration, and is then cleared.
ALTER TABLE pubfn.tenant_databases
    DROP CONSTRAINT tenant_databases_kind_check,
    ADD CONSTRAINT tenant_databases_kind_check CHECK (kind IN ('managed', 'external')),
    ALTER COLUMN dbname DROP NOT NULL,
    ALTER COLUMN role DROP NOT NULL,
    ALTER COLUMN password DROP NOT NULL,
    ADD COLUMN sealed bytea,
    -- An external database's URL without its password, for display.
    ADD COLUMN location text,
    ADD CONSTRAINT tenant_databases_shape CHECK (
        (kind = 'managed' AND dbname IS NOT NULL AND role IS NOT NULL)
        OR (kind = 'external' AND sealed IS NOT NULL AND password IS NULL));

-- Values a tenant's handlers read with pq.get_secret(name); the admin API never returns them.
CREATE TABLE pubfn.tenant_secrets (
    tenant      text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$'),
    sealed      bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);

-- pq.get_state() / pq.set_state(): one small JSON value per endpoint.
CREATE TABLE pubfn.endpoint_state (
    tenant      text NOT NULL,
    endpoint    text NOT NULL,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, endpoint),
    FOREIGN KEY (tenant, endpoint) REFERENCES pubfn.endpoints ON DELETE CASCADE,
    -- The host enforces the configured cap; this bounds what any bug could store.
    CHECK (octet_length(value::text) <= 1048576)
);
