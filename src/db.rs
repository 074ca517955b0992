//! PostgreSQL plumbing: private clusters, tenants' managed databases, their pools, and the
//! database capability the host hands to guests.

pub mod access;
pub mod capability;
pub mod cluster;
pub mod convert;
pub mod pool;
pub mod tenantdb;

pub use access::{ResultCaps, TenantDatabaseAccess};
pub use capability::{DatabaseCapability, DbError};
pub use cluster::{ClusterError, LocalCluster};
pub use pool::{DbTarget, TenantPools};
