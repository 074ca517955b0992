//! PostgreSQL plumbing: private clusters, tenants' managed databases, their pools, and the
//! database capability the host hands to guests.

pub mod access;
pub mod capability;
pub mod cluster;
pub mod columns;
pub mod convert;
pub mod pool;
pub mod render;
pub mod request;
pub mod results;
pub mod sql;
pub mod statements;
pub mod tenantdb;
pub mod tls;

pub use access::{DbSession, TenantDatabaseAccess};
pub use capability::{DatabaseCapability, DbError};
pub use cluster::{ClusterError, LocalCluster};
pub use pool::{DbConnection, DbTarget, PoolSettings, TenantPools};
pub use request::DbRequest;
pub use results::{ResultCaps, server_unavailable};
