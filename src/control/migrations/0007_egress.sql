-- Outbound HTTP from handlers (egress/). Deny by default: an empty allow-list reaches nothing.
ALTER TABLE pubfn.tenants ADD COLUMN egress_allow text[] NOT NULL DEFAULT '{}';

-- pq.connect(name): a base URL and credentials pubfn adds to every request through it.
-- `sealed` holds, encrypted with the deployment's sealing key, the JSON
-- {"headers": {...}, "query": {...}}; the admin API never returns it.
CREATE TABLE pubfn.tenant_connections (
    tenant      text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$'),
    base_url    text NOT NULL,
    sealed      bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);
