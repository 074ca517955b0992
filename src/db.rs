//! PostgreSQL plumbing: private clusters, and (with the data issue) tenants' databases.

pub mod cluster;

pub use cluster::{ClusterError, LocalCluster};
