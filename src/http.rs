//! The HTTP front end: server, routing, the data plane, the admin API, and the one
//! error-to-status map. Knows nothing of wasm.

pub mod admin;
pub mod confine;
pub mod console;
pub mod data;
pub mod metrics;
pub mod respond;
pub mod router;
pub mod server;

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Semaphore;

pub use respond::Problem;
pub use server::{ServerLimits, Surface, serve};

use crate::control::model::TenantLimits;
use crate::control::registry::TenantView;
use crate::control::services::{EndpointStateStore, TenantSecretSource};
use crate::control::{LogSink, Registry, Store};
use crate::db::{ResultCaps, TenantDatabaseAccess, TenantPools};
use crate::sandbox::Capabilities;
use crate::sandbox::Sandbox;

/// Per-tenant caps applied by the front end.
#[derive(Debug, Clone, Copy)]
pub struct TenantCaps {
    /// Requests in flight at once; more get 429.
    pub max_concurrency: usize,
    /// Largest request body, in bytes; more gets 413.
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

/// Everything a request handler needs; one per process.
pub struct AppState {
    /// Control-plane metadata.
    pub store: Store,
    /// The data plane's cache of it.
    pub registry: Arc<Registry>,
    /// The sandbox.
    pub sandbox: Arc<Sandbox>,
    /// The operator's key for the admin API.
    pub admin_key: String,
    /// Front-end protocol limits.
    pub server_limits: ServerLimits,
    /// Default per-tenant caps.
    pub tenant_caps: TenantCaps,
    /// Where handlers' logs go.
    pub logs: LogSink,
    /// Connection pools of tenants' databases.
    pub pools: Arc<TenantPools>,
    /// Caps on one database call's result.
    pub db_caps: ResultCaps,
    /// Per-tenant in-flight request permits, with the cap they were made for.
    pub in_flight: DashMap<String, (usize, Arc<Semaphore>)>,
    /// Counters and histograms for `/metrics`.
    pub metrics: metrics::Metrics,
    /// The bearer token `/metrics` wants; without one, the admin key.
    pub metrics_token: Option<String>,
    /// With it, each tenant's endpoints are served at `{tenant}.<domain>`, an origin of its
    /// own, and no longer below a path of a shared host.
    pub tenant_domain: Option<String>,
    /// The `Content-Security-Policy` added to every handler's response (`sandbox` unless the
    /// operator chose otherwise); `None` adds none.
    pub tenant_csp: Option<hyper::header::HeaderValue>,
}

impl AppState {
    /// The tenant's effective caps: its overrides, else the server's defaults.
    pub fn caps_for(&self, limits: &TenantLimits) -> TenantCaps {
        TenantCaps {
            max_concurrency: limits
                .max_concurrency
                .unwrap_or(self.tenant_caps.max_concurrency),
            max_body_bytes: limits
                .max_body_bytes
                .unwrap_or(self.tenant_caps.max_body_bytes),
        }
    }

    /// What a handler of `tenant` may reach: its databases (returned too, so the caller can end
    /// a transaction the handler left open), its secrets, and `endpoint`'s state if it has one
    /// (a draft run has none).
    pub fn capabilities(
        &self,
        tenant: &TenantView,
        endpoint: Option<&str>,
    ) -> (Arc<TenantDatabaseAccess>, Capabilities) {
        let database = Arc::new(TenantDatabaseAccess::new(
            tenant.databases.clone(),
            self.pools.clone(),
            self.db_caps,
        ));
        let capabilities = Capabilities {
            db: Some(database.clone()),
            secrets: Some(Arc::new(TenantSecretSource {
                store: self.store.clone(),
                tenant: tenant.name.clone(),
                sealed: tenant.secrets.clone(),
            })),
            state: endpoint.map(|endpoint| {
                Arc::new(EndpointStateStore {
                    store: self.store.clone(),
                    tenant: tenant.name.clone(),
                    endpoint: endpoint.to_string(),
                }) as Arc<dyn crate::host::StateStore>
            }),
        };
        (database, capabilities)
    }

    /// Verifies one of `tenant`'s tokens: signature and claims, then that pubfn issued its
    /// `jti` and has not revoked it (a token signed with a leaked secret but never issued is
    /// refused).
    pub async fn verify_token(
        &self,
        tenant: &TenantView,
        token: &str,
    ) -> Result<crate::auth::jwt::Claims, Problem> {
        use crate::auth::AuthError;
        use crate::control::TokenState;
        let claims = crate::auth::jwt::verify(token, &tenant.name, &tenant.jwt_secret)?;
        match self.registry.token_state(tenant, &claims.jti).await? {
            TokenState::Live => Ok(claims),
            TokenState::Revoked => Err(AuthError::Invalid("revoked".into()).into()),
            TokenState::NeverIssued => {
                Err(AuthError::Invalid("not a token pubfn issued".into()).into())
            }
        }
    }

    /// The tenant's in-flight permits; a changed cap starts a new semaphore (requests holding
    /// the old one finish normally).
    pub fn tenant_semaphore(&self, tenant: &str, cap: usize) -> Arc<Semaphore> {
        let mut entry = self
            .in_flight
            .entry(tenant.to_string())
            .or_insert_with(|| (cap, Arc::new(Semaphore::new(cap))));
        if entry.0 != cap {
            *entry = (cap, Arc::new(Semaphore::new(cap)));
        }
        entry.1.clone()
    }
}
