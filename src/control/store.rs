//! The control plane's metadata in PostgreSQL (schema `pubfn`), with embedded migrations.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rand::RngCore;
use tokio_postgres::Row;

use super::ControlError;
use super::model::{Tenant, TenantLimits};
use super::sealed::SealingKey;

/// Embedded migrations, applied in order at start-up; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_request_logs.sql")),
    (3, include_str!("migrations/0003_tenant_databases.sql")),
    (4, include_str!("migrations/0004_sealed_secrets_state.sql")),
    (5, include_str!("migrations/0005_cheaper_request_logs.sql")),
    (6, include_str!("migrations/0006_sealed_jwt_secrets.sql")),
    (7, include_str!("migrations/0007_egress.sql")),
    (8, include_str!("migrations/0008_db_claims.sql")),
    (9, include_str!("migrations/0009_external_database_ca.sql")),
    (10, include_str!("migrations/0010_packages.sql")),
    (11, include_str!("migrations/0011_endpoint_schemas.sql")),
    (12, include_str!("migrations/0012_usage.sql")),
    (13, include_str!("migrations/0013_replays.sql")),
];

/// Renders a timestamptz column as RFC 3339 text (no chrono/time dependency needed).
macro_rules! ts {
    ($col:literal AS $alias:literal) => {
        concat!("to_json(", $col, ")#>>'{}' AS ", $alias)
    };
}

mod databases;
mod egress;
mod endpoints;
mod external;

pub use databases::DatabaseInfo;
pub use egress::{ConnectionInfo, ConnectionSpec, SealedConnection};
pub use packages::CurrentPackages;
mod logs;
mod packages;
mod replays;
mod secrets;
mod state;
mod tokens;
mod usage;

pub use replays::{NewRecording, RecordingInfo};
pub use secrets::SecretInfo;
pub use usage::UsageHour;

/// Names the server's own paths use (`/admin/v1`, `/console/`, `/metrics`, `/healthz`,
/// `/readyz`).
pub const RESERVED_TENANT_NAMES: &[&str] = &["admin", "console", "metrics", "healthz", "readyz"];

pub use super::change::CHANGES_CHANNEL;
use super::change::{Change, ChangeKind};

/// Access to the metadata.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Where the metadata lives; managed tenant databases live on the same cluster.
    config: tokio_postgres::Config,
    /// Seals tenants' secrets and database credentials at rest.
    key: SealingKey,
}

/// What authenticates a tenant's callers: its JWT secret and its tokens' ids.
#[derive(Debug, Clone)]
pub struct TenantAuth {
    /// The HS256 secret (32 random bytes).
    pub jwt_secret: Vec<u8>,
    /// Ids of the tokens pubfn issued for it that may still be used (not revoked, not
    /// expired).
    pub live_tokens: Vec<String>,
    /// Ids of its revoked tokens.
    pub revoked: Vec<String>,
}

/// What the metadata says of a token id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Issued by pubfn and not revoked.
    Live,
    /// Issued, then revoked.
    Revoked,
    /// pubfn never issued a token with this id for this tenant.
    NeverIssued,
}

/// What a tenant's sealed JWT secret is bound to.
fn jwt_context(tenant: &str) -> String {
    format!("jwt {tenant}")
}

impl Store {
    /// Connects a pool of at most `max_size` connections; `key` seals values at rest.
    pub fn connect(
        config: tokio_postgres::Config,
        max_size: usize,
        key: SealingKey,
    ) -> Result<Self, ControlError> {
        let manager = Manager::from_config(
            config.clone(),
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
            .map_err(|e| ControlError::Unavailable(Box::new(e)))?;
        Ok(Store { pool, config, key })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ControlError> {
        self.pool
            .get()
            .await
            .map_err(|e| ControlError::Unavailable(Box::new(e)))
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
        self.seal_legacy_passwords().await?;
        self.seal_legacy_jwt_secrets().await?;
        self.rename_revealing_databases().await?;
        self.grant_warehouses().await
    }

    /// Seals the plaintext JWT secrets that rows written before migration 6 hold.
    async fn seal_legacy_jwt_secrets(&self) -> Result<(), ControlError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, jwt_secret FROM pubfn.tenants WHERE jwt_secret IS NOT NULL",
                &[],
            )
            .await?;
        for row in rows {
            let (name, secret): (String, Vec<u8>) = (row.get(0), row.get(1));
            let sealed = self.key.seal(&secret, &jwt_context(&name));
            client
                .execute(
                    "UPDATE pubfn.tenants SET jwt_sealed = $2, jwt_secret = NULL WHERE name = $1",
                    &[&name, &sealed],
                )
                .await?;
        }
        Ok(())
    }

    /// Creates a tenant with a fresh random JWT secret.
    pub async fn create_tenant(
        &self,
        name: &str,
        limits: TenantLimits,
    ) -> Result<Tenant, ControlError> {
        // These paths belong to the server, so a tenant of that name could never be called.
        if RESERVED_TENANT_NAMES.contains(&name) {
            return Err(ControlError::Invalid(format!(
                "tenant name {name:?} is reserved"
            )));
        }
        // The same rule as the table's CHECK, said in words: a tenant name is a path segment
        // and a DNS label (host-per-tenant mode).
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && name.len() <= 63
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Err(ControlError::Invalid(format!(
                "tenant name {name:?}: 1-63 characters of a-z, 0-9 and '-', starting with a letter"
            )));
        }
        let limits = serde_json::to_value(limits).expect("limits serialise");
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let sealed = self.key.seal(&secret, &jwt_context(name));
        let client = self.client().await?;
        let row = client
            .query_opt(
                concat!(
                    "INSERT INTO pubfn.tenants (name, jwt_sealed, limits) VALUES ($1, $2, $3) ",
                    "ON CONFLICT DO NOTHING RETURNING name, limits, ",
                    ts!("created_at" AS "created_at")
                ),
                &[&name, &sealed, &limits],
            )
            .await?
            .ok_or_else(|| ControlError::Conflict(format!("tenant {name:?} already exists")))?;
        // Nodes may have cached "no such tenant".
        notify(&client, name, ChangeKind::Tenant).await?;
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
        notify(&client, name, ChangeKind::Tenant).await?;
        self.tenant(name).await
    }

    /// Deletes a tenant and everything it owns.
    pub async fn delete_tenant(&self, name: &str) -> Result<(), ControlError> {
        // Its managed databases and role go first: the rows naming them go with the tenant.
        for database in self.databases(name).await? {
            self.remove_database(name, &database.name).await?;
        }
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM pubfn.tenants WHERE name = $1", &[&name])
            .await?;
        if deleted == 0 {
            return Err(ControlError::NotFound(format!("no tenant {name:?}")));
        }
        notify(&client, name, ChangeKind::Deleted).await
    }

    /// The tenant's JWT secret and tokens' ids, and its limits; `None` if there is no tenant
    /// of that name.
    pub async fn tenant_auth(
        &self,
        name: &str,
    ) -> Result<Option<(TenantAuth, TenantLimits)>, ControlError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT jwt_sealed, jwt_secret IS NOT NULL, limits FROM pubfn.tenants WHERE name = $1",
                &[&name],
            )
            .await?
        else {
            return Ok(None);
        };
        if row.get::<_, bool>(1) {
            // Written by a node older than migration 6, during a rolling upgrade.
            self.seal_legacy_jwt_secrets().await?;
            return Box::pin(self.tenant_auth(name)).await;
        }
        let sealed: Vec<u8> = row.get(0);
        let jwt_secret = self.key.open(&sealed, &jwt_context(name))?;
        // Tokens that expired over a minute ago fail on their `exp` anyway.
        let tokens = client
            .query(
                "SELECT jti, revoked_at IS NOT NULL FROM pubfn.tokens WHERE tenant = $1
                 AND (revoked_at IS NOT NULL OR expires_at IS NULL
                      OR expires_at > now() - interval '1 minute')",
                &[&name],
            )
            .await?;
        let (revoked, live): (Vec<_>, Vec<_>) =
            tokens.iter().partition(|row| row.get::<_, bool>(1));
        let ids = |rows: Vec<&Row>| rows.into_iter().map(|r| r.get(0)).collect();
        let limits = serde_json::from_value(row.get(2))
            .map_err(|e| ControlError::corrupt("tenant limits", e))?;
        let auth = TenantAuth {
            jwt_secret,
            live_tokens: ids(live),
            revoked: ids(revoked),
        };
        Ok(Some((auth, limits)))
    }

    /// Whether the metadata database answers a query (readiness).
    pub async fn ping(&self) -> Result<(), ControlError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Whether pubfn issued token `jti` of `tenant`, and whether it was revoked since: for a
    /// token issued after the tenant's cached view was loaded (on this node or another).
    pub async fn token_state(&self, tenant: &str, jti: &str) -> Result<TokenState, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT revoked_at IS NOT NULL FROM pubfn.tokens WHERE tenant = $1 AND jti = $2",
                &[&tenant, &jti],
            )
            .await?;
        Ok(match row {
            None => TokenState::NeverIssued,
            Some(row) if row.get::<_, bool>(0) => TokenState::Revoked,
            Some(_) => TokenState::Live,
        })
    }
}

fn tenant_from_row(row: &Row) -> Result<Tenant, ControlError> {
    Ok(Tenant {
        name: row.get("name"),
        limits: serde_json::from_value(row.get("limits"))
            .map_err(|e| ControlError::corrupt("tenant limits", e))?,
        created_at: row.get("created_at"),
    })
}

/// Announces `kind` of change to `tenant` to every node; delivered when the transaction
/// commits.
pub(super) async fn notify(
    client: &impl deadpool_postgres::GenericClient,
    tenant: &str,
    kind: ChangeKind,
) -> Result<(), ControlError> {
    let payload = Change::new(tenant, kind).payload();
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANGES_CHANNEL, &payload])
        .await?;
    Ok(())
}
