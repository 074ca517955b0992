-- The JSON Schemas an endpoint version declares for its request and response bodies (NULL:
-- none). The request's is applied before the handler runs; both go into the tenant's OpenAPI
-- document.
ALTER TABLE pubfn.endpoint_versions ADD COLUMN request_schema jsonb;
ALTER TABLE pubfn.endpoint_versions ADD COLUMN response_schema jsonb;
