-- Tenants' JWT secrets sealed at rest like their other secrets (control/sealed.rs). A reader
-- of the metadata could otherwise sign any token, admin ones included. `jwt_secret` is only
-- read to seal rows written before this migration, and is then cleared.
ALTER TABLE pubfn.tenants
    ADD COLUMN jwt_sealed bytea,
    ALTER COLUMN jwt_secret DROP NOT NULL,
    ADD CONSTRAINT tenants_jwt_secret_present CHECK (jwt_sealed IS NOT NULL OR jwt_secret IS NOT NULL);
