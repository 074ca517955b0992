-- pubfn's control-plane metadata. Tenants' own data never lives in this schema.
CREATE TABLE pubfn.tenants (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
    jwt_secret  bytea NOT NULL CHECK (length(jwt_secret) = 32),
    limits      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Script sources, immutable and content-addressed.
CREATE TABLE pubfn.scripts (
    tenant      text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, sha256)
);

CREATE TABLE pubfn.endpoints (
    tenant          text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);

-- Every deploy is a version: the script plus the endpoint's settings at that time, so a
-- rollback restores both.
CREATE TABLE pubfn.endpoint_versions (
    tenant      text NOT NULL,
    endpoint    text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    method      text NOT NULL,
    route       text NOT NULL,
    auth        text NOT NULL CHECK (auth IN ('jwt', 'public')),
    isolation   text NOT NULL CHECK (isolation IN ('strict', 'warm')),
    limits      jsonb NOT NULL DEFAULT '{}',
    script      text NOT NULL,
    deployed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, endpoint, version),
    FOREIGN KEY (tenant, endpoint) REFERENCES pubfn.endpoints ON DELETE CASCADE,
    FOREIGN KEY (tenant, script) REFERENCES pubfn.scripts (tenant, sha256) ON DELETE CASCADE
);

CREATE TABLE pubfn.tokens (
    jti         text PRIMARY KEY,
    tenant      text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    name        text NOT NULL,
    admin       boolean NOT NULL DEFAULT false,
    endpoints   text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX tokens_revoked ON pubfn.tokens (tenant) WHERE revoked_at IS NOT NULL;
