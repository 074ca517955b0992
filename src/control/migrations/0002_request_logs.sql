-- Handlers' logs: one row per data-plane call that reached a handler, bounded per tenant by
-- count and by age (pruned by every node).
CREATE TABLE pubfn.request_logs (
    id          bigserial PRIMARY KEY,
    tenant      text NOT NULL REFERENCES pubfn.tenants ON DELETE CASCADE,
    endpoint    text NOT NULL,
    version     integer NOT NULL,
    request_id  text NOT NULL,
    method      text NOT NULL,
    path        text NOT NULL,
    status      smallint NOT NULL,
    duration_ms double precision NOT NULL,
    output      text NOT NULL DEFAULT '',
    error       text,
    traceback   text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_logs_by_endpoint ON pubfn.request_logs (tenant, endpoint, id DESC);
CREATE INDEX request_logs_by_request ON pubfn.request_logs (tenant, request_id);
CREATE INDEX request_logs_by_age ON pubfn.request_logs (created_at);
