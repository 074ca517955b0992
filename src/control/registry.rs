//! The data plane's view of the control plane: per-tenant keys, tokens and routes, cached in
//! memory so a request never queries PostgreSQL, and dropped by the change event
//! (`app::change`) when any node changes a tenant.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::ControlError;
use super::model::{AuthMode, Endpoint, TenantLimits};
use super::route::RoutePattern;
use super::schema::BodySchema;
use super::store::{Store, TokenState};
use crate::db::DbTarget;
use crate::sandbox::{Isolation, Limits, Script};

/// One routable endpoint version.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// Endpoint name.
    pub endpoint: String,
    /// The version served.
    pub version: i32,
    /// HTTP method.
    pub method: String,
    /// Route pattern.
    pub pattern: RoutePattern,
    /// Who may call it.
    pub auth: AuthMode,
    /// Instance sharing.
    pub isolation: Isolation,
    /// Limits.
    pub limits: Limits,
    /// Whether its database calls carry the caller's claims.
    pub db_claims: bool,
    /// The handler.
    pub script: Script,
    /// The package set it was deployed with (hash).
    pub packages: Option<String>,
    /// The schema its request body must match, compiled.
    pub request_schema: Option<Arc<BodySchema>>,
    /// The schema of its response body, as declared (for the OpenAPI document).
    pub response_schema: Option<serde_json::Value>,
}

/// Everything the data plane needs to know about one tenant.
#[derive(Debug)]
pub struct TenantView {
    /// Tenant name.
    pub name: String,
    /// HS256 secret for its tokens.
    pub jwt_secret: Vec<u8>,
    /// Ids of the tokens pubfn issued for it, not revoked, when the view was loaded.
    pub live_tokens: HashSet<String>,
    /// Revoked token ids.
    pub revoked: HashSet<String>,
    /// Its caps.
    pub limits: TenantLimits,
    /// Its databases, by its names for them.
    pub databases: Arc<HashMap<String, DbTarget>>,
    /// Its default warehouse (`pq.DW_NAME`): the first managed database it was given.
    pub warehouse: Option<String>,
    /// Its secrets, still sealed, by name.
    pub secrets: Arc<HashMap<String, Vec<u8>>>,
    /// What its handlers may reach over HTTP.
    pub egress: Arc<crate::egress::AllowList>,
    /// Its stored connections, credentials still sealed, by name.
    pub connections: Arc<HashMap<String, super::store::SealedConnection>>,
    /// Its endpoints.
    pub routes: Vec<RouteEntry>,
    /// Its current package set (hash): what drafts run with.
    pub package_set: Option<String>,
}

/// What a path resolved to within a tenant.
pub enum RouteMatch<'a> {
    /// An endpoint and the path's parameters.
    Found(&'a RouteEntry, BTreeMap<String, String>),
    /// Some endpoint has this path, none with this method; the allowed methods.
    WrongMethod(Vec<String>),
    /// No endpoint has this path.
    NotFound,
}

impl TenantView {
    /// Resolves `method` and the path below the tenant.
    pub fn route(&self, method: &str, segments: &[String]) -> RouteMatch<'_> {
        let mut allowed = Vec::new();
        for entry in &self.routes {
            if let Some(params) = entry.pattern.matches(segments) {
                if entry.method == method {
                    return RouteMatch::Found(entry, params);
                }
                allowed.push(entry.method.clone());
            }
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::WrongMethod(allowed)
        }
    }
}

/// Unknown tenant names remembered at most (requests for random names must not each hit
/// PostgreSQL, nor grow memory without bound).
const MAX_NEGATIVE_ENTRIES: usize = 10_000;

/// The cache.
pub struct Registry {
    store: Store,
    tenants: DashMap<String, Option<Arc<TenantView>>>,
    /// Bumped by every invalidation: a load that raced one is not cached.
    generation: AtomicU64,
}

impl Registry {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Registry {
            store,
            tenants: DashMap::new(),
            generation: AtomicU64::new(0),
        })
    }

    /// The tenant's view, loading it on a miss; `None` if there is no such tenant.
    pub async fn tenant(&self, name: &str) -> Result<Option<Arc<TenantView>>, ControlError> {
        if let Some(entry) = self.tenants.get(name) {
            return Ok(entry.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let view = self.load(name).await?;
        if view.is_none() && self.tenants.len() >= MAX_NEGATIVE_ENTRIES {
            self.tenants.retain(|_, v| v.is_some());
        }
        if self.generation.load(Ordering::SeqCst) == generation {
            self.tenants.insert(name.to_string(), view.clone());
        }
        Ok(view)
    }

    /// Whether pubfn issued token `jti` of `tenant` and has not revoked it. The view answers
    /// for the tokens it knows; one issued since it was loaded (its notification still on its
    /// way) is looked up. Only a correctly signed token gets here, so only pubfn's own tokens
    /// and forgeries with the tenant's secret cause lookups.
    pub async fn token_state(
        &self,
        tenant: &TenantView,
        jti: &str,
    ) -> Result<TokenState, ControlError> {
        if tenant.revoked.contains(jti) {
            return Ok(TokenState::Revoked);
        }
        if tenant.live_tokens.contains(jti) {
            return Ok(TokenState::Live);
        }
        self.store.token_state(&tenant.name, jti).await
    }

    /// Forgets a tenant, so the next request reloads it.
    pub fn invalidate(&self, name: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.tenants.remove(name);
    }

    /// Forgets every tenant (after changes may have been missed).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.tenants.clear();
    }

    async fn load(&self, name: &str) -> Result<Option<Arc<TenantView>>, ControlError> {
        let Some((auth, limits)) = self.store.tenant_auth(name).await? else {
            return Ok(None);
        };
        let routes = self
            .store
            .endpoints(name, true)
            .await?
            .into_iter()
            .map(route_entry)
            .collect::<Result<_, _>>()?;
        Ok(Some(Arc::new(TenantView {
            name: name.to_string(),
            jwt_secret: auth.jwt_secret,
            live_tokens: auth.live_tokens.into_iter().collect(),
            revoked: auth.revoked.into_iter().collect(),
            limits,
            secrets: Arc::new(self.store.sealed_secrets(name).await?),
            egress: Arc::new(self.store.egress_policy(name).await?),
            connections: Arc::new(self.store.sealed_connections(name).await?),
            databases: Arc::new(
                self.store
                    .database_targets(name)
                    .await?
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect(),
            ),
            warehouse: self.store.default_warehouse(name).await?,
            package_set: self.store.current_package_set(name).await?,
            routes,
        })))
    }
}

fn route_entry(endpoint: Endpoint) -> Result<RouteEntry, ControlError> {
    let current = endpoint.current;
    Ok(RouteEntry {
        endpoint: endpoint.name,
        version: current.version,
        method: current.method,
        pattern: RoutePattern::parse(&current.route)?,
        auth: current.auth,
        isolation: current.isolation,
        limits: current.limits,
        db_claims: current.db_claims,
        script: Script::new(endpoint.script.unwrap_or_default()),
        packages: current.package_set,
        request_schema: current
            .request_schema
            .as_ref()
            .map(|schema| BodySchema::compile("request_schema", schema).map(Arc::new))
            .transpose()
            // Deploy compiled it: failing now means the stored row or this build changed.
            .map_err(|e| ControlError::corrupt("endpoint request_schema", e))?,
        response_schema: current.response_schema,
    })
}
