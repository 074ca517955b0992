//! One bounded connection pool per (tenant, database), connecting as the tenant's role, so a
//! tenant that exhausts its pool waits or fails and never takes another tenant's connections.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use super::DbError;

/// Undoes whatever the tenant's last request left on a pooled connection's session (an open
/// transaction, settings, cursors, LISTENs, advisory locks, temp tables). Every checkout runs
/// it first, pipelined with its own first statements so that it costs no round trip of its
/// own: see [`TenantPools::get`] and [`reset_and_begin`].
pub const RESET_SESSION: &str = "ROLLBACK; CLOSE ALL; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// Where a tenant database is and who connects to it.
#[derive(Clone, PartialEq, Eq)]
pub struct DbTarget {
    /// Tenant name.
    pub tenant: String,
    /// The tenant's name for the database (`dw_2`).
    pub name: String,
    /// How to reach it.
    pub connection: DbConnection,
}

/// How to reach a tenant database.
#[derive(Clone, PartialEq, Eq)]
pub enum DbConnection {
    /// A database on pubfn's own cluster, reached as the tenant's role.
    Managed {
        /// The PostgreSQL database.
        dbname: String,
        /// The tenant's role.
        role: String,
        /// The role's password.
        password: String,
    },
    /// A PostgreSQL URL the operator registered for the tenant.
    External {
        /// The URL, credentials included.
        url: String,
        /// A CA its certificate chains to, beside the system's roots (PEM).
        ca_pem: Option<String>,
    },
}

/// Never prints credentials: targets end up in logs.
impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.connection {
            DbConnection::Managed { dbname, .. } => format!("managed {dbname}"),
            DbConnection::External { .. } => "external".to_string(),
        };
        write!(f, "DbTarget({}/{}, {kind})", self.tenant, self.name)
    }
}

/// Bounds on each (tenant, database) pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections at most.
    pub max_size: usize,
    /// How long to wait for a new connection to be made, at most.
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 5,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The pools, created on first use.
pub struct TenantPools {
    base: tokio_postgres::Config,
    settings: PoolSettings,
    pools: DashMap<(String, String), (DbTarget, Pool)>,
}

impl TenantPools {
    /// Pools for managed databases on the cluster that `base` points at (its host and port
    /// are used), and for external ones wherever their URL says.
    pub fn new(base: tokio_postgres::Config, settings: PoolSettings) -> Self {
        TenantPools {
            base,
            settings,
            pools: DashMap::new(),
        }
    }

    /// A connection to `target`, waiting at most until `deadline`. It may still carry what
    /// the tenant's last request left on it: run [`RESET_SESSION`] before anything else.
    pub async fn get(
        &self,
        target: &DbTarget,
        deadline: Instant,
    ) -> Result<deadpool_postgres::Object, DbError> {
        let pool = self.pool(target)?;
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let mut timeouts = deadpool_postgres::Timeouts::wait_millis(wait.as_millis() as u64);
        timeouts.create = Some(wait.min(self.settings.connect_timeout));
        pool.timeout_get(&timeouts).await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => {
                DbError::Unavailable("no database connection free before the deadline".into())
            }
            other => DbError::Unavailable(other.to_string()),
        })
    }

    /// Each pool's (tenant, database, connections open, connections idle, callers waiting).
    pub fn usage(&self) -> Vec<(String, String, usize, usize, usize)> {
        self.pools
            .iter()
            .map(|entry| {
                let ((tenant, name), (_, pool)) = (entry.key(), entry.value());
                let status = pool.status();
                (
                    tenant.clone(),
                    name.clone(),
                    status.size,
                    status.available,
                    status.waiting,
                )
            })
            .collect()
    }

    /// Forgets a tenant's pools (its database was removed or the tenant deleted).
    pub fn forget_tenant(&self, tenant: &str) {
        self.pools.retain(|(t, _), _| t != tenant);
    }

    fn pool(&self, target: &DbTarget) -> Result<Pool, DbError> {
        let key = (target.tenant.clone(), target.name.clone());
        if let Some(entry) = self.pools.get(&key)
            && entry.0 == *target
        {
            return Ok(entry.1.clone());
        }
        // A connection comes back from a hostile handler, but deadpool's own reset at
        // checkout would cost a round trip before the caller's first statement: the caller
        // sends RESET_SESSION itself, in the same flight as that statement.
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &target.connection {
            DbConnection::Managed {
                dbname,
                role,
                password,
            } => {
                // pubfn's own cluster, over its private socket: no TLS to have.
                let mut config = self.base.clone();
                config
                    .user(role)
                    .password(password)
                    .dbname(dbname)
                    .application_name("pubfn-tenant");
                Manager::from_config(config, tokio_postgres::NoTls, manager_config)
            }
            DbConnection::External { url, ca_pem } => {
                let bad = |e: String| DbError::Unavailable(format!("external database: {e}"));
                let (mut config, mode) = super::tls::parse_url(url).map_err(bad)?;
                config.application_name("pubfn-tenant");
                let tls = super::tls::connector(mode, ca_pem.as_deref()).map_err(bad)?;
                Manager::from_config(config, tls, manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(self.settings.max_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        self.pools.insert(key, (target.clone(), pool.clone()));
        Ok(pool)
    }
}

/// Resets a connection just taken from the pool and runs `begin`, in one round trip.
pub async fn reset_and_begin(client: &tokio_postgres::Client, begin: &str) -> Result<(), DbError> {
    let (reset, begun) = tokio::join!(
        client.batch_execute(RESET_SESSION),
        client.batch_execute(begin)
    );
    reset.map_err(super::results::sql_error)?;
    begun.map_err(super::results::sql_error)
}
