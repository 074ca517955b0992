//! The application layer: every use case of pubfn in one function a newcomer can find by
//! name, and the one change event. It alone calls the control plane, the sandbox and the
//! tenants' databases together; `http/` and `cli/` parse, call these, and map the error.
//!
//! | use case | where |
//! | --- | --- |
//! | create, read, cap, delete a tenant | [`tenants`] |
//! | deploy, roll back, delete an endpoint; its versions and logs | [`endpoints`] |
//! | issue, list, revoke tokens; check a caller's token | [`tokens`] |
//! | add or remove a database, set or delete a secret | [`resources`] |
//! | a tenant's egress allow-list and stored connections | [`egress`] |
//! | a tenant's modules, wheels and preload list | [`packages`] |
//! | call an endpoint (admission, then the handler) | [`invoke`] |
//! | run a draft script | [`drafts`] |
//! | keep a failed call's recording; read it back for `pubfn replay` | [`replay`] |
//! | run SQL in, or load a CSV into, a tenant's own database | [`warehouse`] |
//! | what every node does when a tenant changes | [`change`] |
//! | keep the node within its memory budget | [`budget`] |
//! | whether the node should be sent requests; draining | [`health`] |
//! | the embedded server's demo tenant | [`demo`] |

pub mod budget;
pub mod change;
pub mod demo;
pub mod drafts;
pub mod egress;
pub mod endpoints;
mod error;
pub mod health;
pub mod invoke;
pub mod openapi;
pub mod packages;
pub mod replay;
pub mod resources;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod warehouse;

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Semaphore;

pub use error::{AppError, describe};
pub use tokens::Caller;

use crate::control::model::TenantLimits;
use crate::control::replays::ReplayKeeper;
use crate::control::usage::UsageLedger;
use crate::control::{LogSink, Registry, Store};
use crate::db::{ResultCaps, TenantPools};
use crate::egress::EgressClients;
use crate::sandbox::Sandbox;

/// A tenant's caps in force: its own limits where it has them, else the server's defaults.
#[derive(Debug, Clone, Copy)]
pub struct TenantCaps {
    /// Requests in flight at once; more are refused.
    pub max_concurrency: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for TenantCaps {
    fn default() -> Self {
        TenantCaps {
            max_concurrency: 32,
            max_body_bytes: 1 << 20,
        }
    }
}

/// What the application is made of; one per process.
pub struct AppParts {
    /// Control-plane metadata.
    pub store: Store,
    /// The data plane's cache of it.
    pub registry: Arc<Registry>,
    /// The sandbox.
    pub sandbox: Arc<Sandbox>,
    /// Connection pools of tenants' databases.
    pub pools: Arc<TenantPools>,
    /// Where handlers' logs go.
    pub logs: LogSink,
    /// Where calls are metered.
    pub usage: UsageLedger,
    /// Where failed calls' recordings go.
    pub replays: ReplayKeeper,
    /// Caps on one database call's result.
    pub db_caps: ResultCaps,
    /// Handlers' outbound HTTP clients.
    pub egress: Arc<EgressClients>,
    /// Caps of a tenant that sets none of its own.
    pub default_caps: TenantCaps,
    /// The operator's key.
    pub admin_key: String,
    /// The node's memory budget in bytes ([`budget`]).
    pub memory_budget_bytes: u64,
}

/// Counts of background writes dropped because their queue was full.
#[derive(Debug, Clone, Copy, Default)]
pub struct DroppedWrites {
    /// Handler log entries.
    pub logs: u64,
    /// Failed calls' recordings for replay.
    pub replays: u64,
}

/// The application: the use cases over the store, registry, pools, sandbox and log sink.
pub struct App {
    store: Store,
    registry: Arc<Registry>,
    sandbox: Arc<Sandbox>,
    pools: Arc<TenantPools>,
    logs: LogSink,
    usage: UsageLedger,
    replays: ReplayKeeper,
    db_caps: ResultCaps,
    egress: Arc<EgressClients>,
    default_caps: TenantCaps,
    admin_key: String,
    /// Per-tenant in-flight permits, with the cap they were made for.
    in_flight: DashMap<String, (usize, Arc<Semaphore>)>,
    /// Package sets installed on this node, by `tenant/hash` (immutable, so never stale).
    package_sets: DashMap<String, Arc<crate::sandbox::PackageSet>>,
    /// The node's memory budget, and when each tenant was last called.
    budget: budget::MemoryBudget,
    /// Draining, and the last readiness check.
    health: health::HealthState,
}

impl App {
    /// The application over `parts`.
    pub fn new(parts: AppParts) -> Arc<Self> {
        Arc::new(App {
            store: parts.store,
            registry: parts.registry,
            sandbox: parts.sandbox,
            pools: parts.pools,
            logs: parts.logs,
            usage: parts.usage,
            replays: parts.replays,
            db_caps: parts.db_caps,
            egress: parts.egress,
            default_caps: parts.default_caps,
            admin_key: parts.admin_key,
            in_flight: DashMap::new(),
            package_sets: DashMap::new(),
            budget: budget::MemoryBudget::new(parts.memory_budget_bytes),
            health: health::HealthState::default(),
        })
    }

    /// The sandbox (for `/metrics`).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The tenants' database pools (for `/metrics`).
    pub fn pools(&self) -> &TenantPools {
        &self.pools
    }

    /// Background writes dropped so far because their queue was full: handler log entries
    /// and failed calls' recordings (for `/metrics`).
    pub fn dropped_writes(&self) -> DroppedWrites {
        DroppedWrites {
            logs: self.logs.dropped(),
            replays: self.replays.dropped(),
        }
    }

    /// The operator's key.
    pub fn admin_key(&self) -> &str {
        &self.admin_key
    }

    /// The caps in force for a tenant with `limits`.
    pub fn caps_in_force(&self, limits: &TenantLimits) -> TenantCaps {
        TenantCaps {
            max_concurrency: limits
                .max_concurrency
                .unwrap_or(self.default_caps.max_concurrency),
            max_body_bytes: limits
                .max_body_bytes
                .unwrap_or(self.default_caps.max_body_bytes),
        }
    }

    /// One of the tenant's in-flight permits, if it has one left: every call of the tenant
    /// (endpoint or draft) holds one while it runs. A changed cap starts a new semaphore
    /// (calls holding the old one finish normally).
    fn try_permit(
        &self,
        tenant: &str,
        limits: &TenantLimits,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        let cap = self.caps_in_force(limits).max_concurrency;
        self.budget.touch(tenant);
        let semaphore = {
            let mut entry = self
                .in_flight
                .entry(tenant.to_string())
                .or_insert_with(|| (cap, Arc::new(Semaphore::new(cap))));
            if entry.0 != cap {
                *entry = (cap, Arc::new(Semaphore::new(cap)));
            }
            entry.1.clone()
        };
        semaphore
            .try_acquire_owned()
            .map_err(|_| AppError::TooManyRequests)
    }
}
