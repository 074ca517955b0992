-- Recordings of failed calls, for `pubfn replay`: what the handler received, sealed with the
-- store's key (the rows hold tenants' data), a few per tenant, expiring.
CREATE TABLE pubfn.replays (
    tenant text NOT NULL REFERENCES pubfn.tenants (name) ON DELETE CASCADE,
    request_id text NOT NULL,
    endpoint text NOT NULL,
    status smallint NOT NULL,
    calls integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    sealed bytea NOT NULL,
    PRIMARY KEY (tenant, request_id)
);
CREATE INDEX replays_expiry ON pubfn.replays (expires_at);
