-- Tenants' Python packages: their own modules and pure-Python wheels.
--
-- A package set is immutable and named by the SHA-256 of its manifest (modules, wheels,
-- preload list). The tenant's current set is what its next deploy records; an endpoint version
-- keeps the set it was deployed with, so a new wheel never changes a running version and a
-- rollback brings its set back. File contents are stored once per tenant, by their SHA-256.
CREATE TABLE pubfn.package_blobs (
    tenant      text NOT NULL REFERENCES pubfn.tenants(name) ON DELETE CASCADE,
    sha256      text NOT NULL,
    content     bytea NOT NULL,
    PRIMARY KEY (tenant, sha256)
);

CREATE TABLE pubfn.package_sets (
    tenant      text NOT NULL REFERENCES pubfn.tenants(name) ON DELETE CASCADE,
    hash        text NOT NULL,
    manifest    jsonb NOT NULL,
    -- The blobs the manifest names: what keeps them from being collected.
    blobs       text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, hash)
);

-- NULL: no packages (the tenant's plain snapshot).
ALTER TABLE pubfn.tenants ADD COLUMN package_set text;
ALTER TABLE pubfn.endpoint_versions ADD COLUMN package_set text;
