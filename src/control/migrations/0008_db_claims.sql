-- An endpoint version whose database calls carry the caller's verified claims
-- (`request.jwt.claims`, `request.endpoint`), for the tenant's row-level security policies.
ALTER TABLE pubfn.endpoint_versions ADD COLUMN db_claims boolean NOT NULL DEFAULT false;
