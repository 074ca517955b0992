//! One bounded connection pool per (tenant, database), connecting as the tenant's role, so a
//! tenant that exhausts its pool waits or fails and never takes another tenant's connections.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use super::DbError;

/// Where a tenant database is and who connects to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    /// Tenant name.
    pub tenant: String,
    /// The tenant's name for the database (`dw_2`).
    pub name: String,
    /// The PostgreSQL database.
    pub dbname: String,
    /// The tenant's role.
    pub role: String,
    /// The role's password.
    pub password: String,
}

/// Connections per (tenant, database) at most.
const POOL_SIZE: usize = 5;

/// The pools, created on first use.
pub struct TenantPools {
    base: tokio_postgres::Config,
    pools: DashMap<(String, String), (DbTarget, Pool)>,
}

impl TenantPools {
    /// Pools on the cluster that `base` points at (its host and port are used).
    pub fn new(base: tokio_postgres::Config) -> Self {
        TenantPools {
            base,
            pools: DashMap::new(),
        }
    }

    /// A connection to `target`, waiting at most until `deadline`.
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
        timeouts.create = Some(wait.min(Duration::from_secs(5)));
        pool.timeout_get(&timeouts).await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => {
                DbError::Unavailable("no database connection free before the deadline".into())
            }
            other => DbError::Unavailable(other.to_string()),
        })
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
        let mut config = self.base.clone();
        config
            .user(&target.role)
            .password(&target.password)
            .dbname(&target.dbname);
        config.application_name("pubfn-tenant");
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        self.pools.insert(key, (target.clone(), pool.clone()));
        Ok(pool)
    }
}
