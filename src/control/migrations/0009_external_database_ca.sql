-- A CA an external tenant database's certificate chains to, beside the system's roots (PEM;
-- public, so not sealed).
ALTER TABLE pubfn.tenant_databases ADD COLUMN ca_pem text;
