//! The control plane's metadata in PostgreSQL (schema `pubfn`), with embedded migrations.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use super::ControlError;
use super::model::{
    AuthMode, Endpoint, EndpointSpec, EndpointVersion, Tenant, TenantLimits, TokenRecord,
    isolation_str, parse_isolation,
};

/// Embedded migrations, applied in order at start-up; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/0001_init.sql"))];

/// Renders a timestamptz column as RFC 3339 text (no chrono/time dependency needed).
macro_rules! ts {
    ($col:literal AS $alias:literal) => {
        concat!("to_json(", $col, ")#>>'{}' AS ", $alias)
    };
}

/// The NOTIFY channel on which every change is announced, with the tenant as payload.
pub const CHANGES_CHANNEL: &str = "pubfn_changes";

/// Access to the metadata.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

/// A tenant's JWT secret and the state the data plane needs about it.
#[derive(Debug, Clone)]
pub struct TenantSecrets {
    /// The HS256 secret (32 random bytes).
    pub jwt_secret: Vec<u8>,
    /// Ids of its revoked tokens.
    pub revoked: Vec<String>,
    /// Its caps.
    pub limits: TenantLimits,
}

impl Store {
    /// Connects a pool of at most `max_size` connections.
    pub fn connect(config: tokio_postgres::Config, max_size: usize) -> Result<Self, ControlError> {
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_size)
            // A request waits this long for a metadata connection before failing with 503.
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| ControlError::Unavailable(e.to_string()))?;
        Ok(Store { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ControlError> {
        self.pool
            .get()
            .await
            .map_err(|e| ControlError::Unavailable(e.to_string()))
    }

    /// Applies the embedded migrations not yet applied; safe with several nodes starting at once.
    pub async fn migrate(&self) -> Result<(), ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Serialises concurrent starters; released at commit.
        tx.execute("SELECT pg_advisory_xact_lock(7243001)", &[])
            .await?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS pubfn;
             CREATE TABLE IF NOT EXISTS pubfn.schema_migrations (
                 version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        for (version, sql) in MIGRATIONS {
            let done = tx
                .query_opt(
                    "SELECT 1 FROM pubfn.schema_migrations WHERE version = $1",
                    &[version],
                )
                .await?
                .is_some();
            if !done {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO pubfn.schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates a tenant with a fresh random JWT secret.
    pub async fn create_tenant(
        &self,
        name: &str,
        limits: TenantLimits,
    ) -> Result<Tenant, ControlError> {
        let limits = serde_json::to_value(limits).expect("limits serialise");
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let client = self.client().await?;
        let row = client
            .query_opt(
                concat!(
                    "INSERT INTO pubfn.tenants (name, jwt_secret, limits) VALUES ($1, $2, $3) ",
                    "ON CONFLICT DO NOTHING RETURNING name, limits, ",
                    ts!("created_at" AS "created_at")
                ),
                &[&name, &secret, &limits],
            )
            .await?
            .ok_or_else(|| ControlError::Conflict(format!("tenant {name:?} already exists")))?;
        // Nodes may have cached "no such tenant".
        notify(&client, name).await?;
        tenant_from_row(&row)
    }

    /// All tenants, by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT name, limits, ",
                    ts!("created_at" AS "created_at"),
                    " FROM pubfn.tenants ORDER BY name"
                ),
                &[],
            )
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// One tenant.
    pub async fn tenant(&self, name: &str) -> Result<Tenant, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                concat!(
                    "SELECT name, limits, ",
                    ts!("created_at" AS "created_at"),
                    " FROM pubfn.tenants WHERE name = $1"
                ),
                &[&name],
            )
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no tenant {name:?}")))?;
        tenant_from_row(&row)
    }

    /// Replaces a tenant's caps.
    pub async fn set_tenant_limits(
        &self,
        name: &str,
        limits: TenantLimits,
    ) -> Result<Tenant, ControlError> {
        let value = serde_json::to_value(limits).expect("limits serialise");
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE pubfn.tenants SET limits = $2 WHERE name = $1",
                &[&name, &value],
            )
            .await?;
        if updated == 0 {
            return Err(ControlError::NotFound(format!("no tenant {name:?}")));
        }
        notify(&client, name).await?;
        self.tenant(name).await
    }

    /// Deletes a tenant and everything it owns.
    pub async fn delete_tenant(&self, name: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM pubfn.tenants WHERE name = $1", &[&name])
            .await?;
        if deleted == 0 {
            return Err(ControlError::NotFound(format!("no tenant {name:?}")));
        }
        notify(&client, name).await
    }

    /// The tenant's JWT secret and revoked token ids.
    pub async fn tenant_secrets(&self, name: &str) -> Result<Option<TenantSecrets>, ControlError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT jwt_secret, limits FROM pubfn.tenants WHERE name = $1",
                &[&name],
            )
            .await?
        else {
            return Ok(None);
        };
        let revoked = client
            .query(
                "SELECT jti FROM pubfn.tokens WHERE tenant = $1 AND revoked_at IS NOT NULL",
                &[&name],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let limits = serde_json::from_value(row.get(1))
            .map_err(|_| ControlError::Internal("bad limits in pubfn.tenants".into()))?;
        Ok(Some(TenantSecrets {
            jwt_secret: row.get(0),
            revoked,
            limits,
        }))
    }

    /// Stores a new version of an endpoint (creating the endpoint on first deploy) and makes it
    /// current; returns that version. The script must already have passed the sandbox's check.
    pub async fn deploy(
        &self,
        tenant: &str,
        name: &str,
        spec: &EndpointSpec,
    ) -> Result<EndpointVersion, ControlError> {
        let sha = hex::encode(Sha256::digest(spec.script.as_bytes()));
        let limits = serde_json::to_value(spec.limits).expect("limits serialise");
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One deploy per tenant at a time, so route conflicts are checked against settled state.
        tx.execute(
            "SELECT 1 FROM pubfn.tenants WHERE name = $1 FOR UPDATE",
            &[&tenant],
        )
        .await?;
        let clash = tx
            .query_opt(
                "SELECT e.name FROM pubfn.endpoints e JOIN pubfn.endpoint_versions v
                   ON v.tenant = e.tenant AND v.endpoint = e.name AND v.version = e.current_version
                 WHERE e.tenant = $1 AND e.name <> $2 AND v.method = $3 AND v.route = $4",
                &[&tenant, &name, &spec.method, &spec.route],
            )
            .await?;
        if let Some(row) = clash {
            let other: String = row.get(0);
            return Err(ControlError::Conflict(format!(
                "{} {} is already served by endpoint {other:?}",
                spec.method, spec.route
            )));
        }
        tx.execute(
            "INSERT INTO pubfn.scripts (tenant, sha256, source) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&tenant, &sha, &spec.script],
        )
        .await?;
        let version: i32 = tx
            .query_one(
                "INSERT INTO pubfn.endpoints (tenant, name, current_version) VALUES ($1, $2, 1)
                 ON CONFLICT (tenant, name) DO UPDATE SET
                   current_version = (SELECT max(version) + 1 FROM pubfn.endpoint_versions
                                      WHERE tenant = $1 AND endpoint = $2),
                   updated_at = now()
                 RETURNING current_version",
                &[&tenant, &name],
            )
            .await?
            .get(0);
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO pubfn.endpoint_versions
                       (tenant, endpoint, version, method, route, auth, isolation, limits, script)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     RETURNING version, method, route, auth, isolation, limits, script, ",
                    ts!("deployed_at" AS "deployed_at")
                ),
                &[
                    &tenant,
                    &name,
                    &version,
                    &spec.method,
                    &spec.route,
                    &spec.auth.as_str(),
                    &isolation_str(spec.isolation),
                    &limits,
                    &sha,
                ],
            )
            .await?;
        notify(&tx, tenant).await?;
        tx.commit().await?;
        version_from_row(&row)
    }

    /// The tenant's endpoints with their current versions (and scripts, if `with_scripts`).
    pub async fn endpoints(
        &self,
        tenant: &str,
        with_scripts: bool,
    ) -> Result<Vec<Endpoint>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(ENDPOINTS_QUERY, &[&tenant, &None::<String>])
            .await?;
        rows.iter()
            .map(|row| endpoint_from_row(row, with_scripts))
            .collect()
    }

    /// One endpoint with its script.
    pub async fn endpoint(&self, tenant: &str, name: &str) -> Result<Endpoint, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(ENDPOINTS_QUERY, &[&tenant, &Some(name)])
            .await?
            .ok_or_else(|| {
                ControlError::NotFound(format!("no endpoint {name:?} in tenant {tenant:?}"))
            })?;
        endpoint_from_row(&row, true)
    }

    /// Every version of an endpoint, oldest first.
    pub async fn versions(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<EndpointVersion>, ControlError> {
        self.endpoint(tenant, name).await?;
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT version, method, route, auth, isolation, limits, script, ",
                    ts!("deployed_at" AS "deployed_at"),
                    " FROM pubfn.endpoint_versions WHERE tenant = $1 AND endpoint = $2 ORDER BY version"
                ),
                &[&tenant, &name],
            )
            .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Makes an older version current again.
    pub async fn rollback(
        &self,
        tenant: &str,
        name: &str,
        version: i32,
    ) -> Result<Endpoint, ControlError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE pubfn.endpoints SET current_version = $3, updated_at = now()
                 WHERE tenant = $1 AND name = $2 AND EXISTS (SELECT 1 FROM pubfn.endpoint_versions
                   WHERE tenant = $1 AND endpoint = $2 AND version = $3)",
                &[&tenant, &name, &version],
            )
            .await?;
        if updated == 0 {
            return Err(ControlError::NotFound(format!(
                "endpoint {name:?} has no version {version}"
            )));
        }
        notify(&client, tenant).await?;
        self.endpoint(tenant, name).await
    }

    /// Deletes an endpoint and its versions.
    pub async fn delete_endpoint(&self, tenant: &str, name: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM pubfn.endpoints WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        if deleted == 0 {
            return Err(ControlError::NotFound(format!(
                "no endpoint {name:?} in tenant {tenant:?}"
            )));
        }
        notify(&client, tenant).await
    }

    /// Records a newly issued token.
    pub async fn insert_token(
        &self,
        tenant: &str,
        token: &TokenRecord,
        expires_unix: Option<i64>,
    ) -> Result<(), ControlError> {
        let expires = expires_unix.map(|s| s as f64);
        self.client()
            .await?
            .execute(
                "INSERT INTO pubfn.tokens (jti, tenant, name, admin, endpoints, expires_at)
                 VALUES ($1, $2, $3, $4, $5, to_timestamp($6))",
                &[
                    &token.jti,
                    &tenant,
                    &token.name,
                    &token.admin,
                    &token.endpoints,
                    &expires,
                ],
            )
            .await?;
        Ok(())
    }

    /// The tenant's tokens, newest first; never their values.
    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT jti, name, admin, endpoints, ",
                    ts!("created_at" AS "created_at"),
                    ", ",
                    ts!("expires_at" AS "expires_at"),
                    ", ",
                    ts!("revoked_at" AS "revoked_at"),
                    " FROM pubfn.tokens WHERE tenant = $1 ORDER BY created_at DESC, jti"
                ),
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TokenRecord {
                jti: r.get(0),
                name: r.get(1),
                admin: r.get(2),
                endpoints: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                revoked_at: r.get(6),
            })
            .collect())
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, tenant: &str, jti: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE pubfn.tokens SET revoked_at = coalesce(revoked_at, now()) WHERE tenant = $1 AND jti = $2",
                &[&tenant, &jti],
            )
            .await?;
        if updated == 0 {
            return Err(ControlError::NotFound(format!(
                "no token {jti:?} in tenant {tenant:?}"
            )));
        }
        notify(&client, tenant).await
    }
}

const ENDPOINTS_QUERY: &str = concat!(
    "SELECT e.tenant, e.name, v.version, v.method, v.route, v.auth, v.isolation, v.limits, v.script, ",
    ts!("v.deployed_at" AS "deployed_at"),
    ", s.source
     FROM pubfn.endpoints e
     JOIN pubfn.endpoint_versions v ON v.tenant = e.tenant AND v.endpoint = e.name AND v.version = e.current_version
     JOIN pubfn.scripts s ON s.tenant = v.tenant AND s.sha256 = v.script
     WHERE e.tenant = $1 AND ($2::text IS NULL OR e.name = $2)
     ORDER BY e.name"
);

fn tenant_from_row(row: &Row) -> Result<Tenant, ControlError> {
    Ok(Tenant {
        name: row.get("name"),
        limits: serde_json::from_value(row.get("limits"))
            .map_err(|_| ControlError::Internal("bad limits in pubfn.tenants".into()))?,
        created_at: row.get("created_at"),
    })
}

fn version_from_row(row: &Row) -> Result<EndpointVersion, ControlError> {
    let corrupt =
        |what: &str| ControlError::Internal(format!("bad {what} in pubfn.endpoint_versions"));
    Ok(EndpointVersion {
        version: row.get("version"),
        method: row.get("method"),
        route: row.get("route"),
        auth: AuthMode::parse(row.get("auth")).ok_or_else(|| corrupt("auth"))?,
        isolation: parse_isolation(row.get("isolation")).ok_or_else(|| corrupt("isolation"))?,
        limits: serde_json::from_value(row.get("limits")).map_err(|_| corrupt("limits"))?,
        script_sha256: row.get("script"),
        deployed_at: row.get("deployed_at"),
    })
}

fn endpoint_from_row(row: &Row, with_script: bool) -> Result<Endpoint, ControlError> {
    Ok(Endpoint {
        tenant: row.get("tenant"),
        name: row.get("name"),
        current: version_from_row(row)?,
        script: with_script.then(|| row.get("source")),
    })
}

/// Announces a change of `tenant` to every node; delivered when the transaction commits.
async fn notify(
    client: &impl deadpool_postgres::GenericClient,
    tenant: &str,
) -> Result<(), ControlError> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANGES_CHANNEL, &tenant])
        .await?;
    Ok(())
}
