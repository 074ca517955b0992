-- Metering. Each handler log entry keeps what its call used (NULL before metering); the
-- hourly totals per endpoint are kept apart, since routine calls are not all logged.
ALTER TABLE pubfn.request_logs ADD COLUMN usage jsonb;

CREATE TABLE pubfn.usage_hourly (
    tenant text NOT NULL REFERENCES pubfn.tenants (name) ON DELETE CASCADE,
    endpoint text NOT NULL,
    hour timestamptz NOT NULL,
    calls bigint NOT NULL DEFAULT 0,
    errors bigint NOT NULL DEFAULT 0,
    cpu_us bigint NOT NULL DEFAULT 0,
    db_us bigint NOT NULL DEFAULT 0,
    db_round_trips bigint NOT NULL DEFAULT 0,
    egress_us bigint NOT NULL DEFAULT 0,
    egress_bytes bigint NOT NULL DEFAULT 0,
    response_bytes bigint NOT NULL DEFAULT 0,
    peak_memory_bytes bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, hour, endpoint)
);
