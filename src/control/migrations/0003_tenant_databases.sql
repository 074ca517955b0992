-- Tenants' named databases. A managed one is a PostgreSQL database on this cluster, reached
-- as a role made for the tenant that has no rights anywhere else.
CREATE TABLE pubfn.tenant_databases (
    tenant      text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,30}$'),
    kind        text NOT NULL CHECK (kind IN ('managed')),
    dbname      text NOT NULL UNIQUE,
    role        text NOT NULL,
    password    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);
