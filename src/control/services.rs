//! The control plane's side of the guest's secrets and state capabilities (host/secret.rs,
//! host/state.rs), made per request for one tenant and one endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::Store;
use crate::host::secret::SecretFuture;
use crate::host::state::StateFuture;
use crate::host::{SecretError, SecretSource, StateStore};

/// A tenant's secrets, as the registry cached them: still sealed, opened on use.
pub struct TenantSecretSource {
    /// The store, whose key opens them.
    pub store: Store,
    /// Whose secrets.
    pub tenant: String,
    /// Sealed values by name.
    pub sealed: Arc<HashMap<String, Vec<u8>>>,
}

impl SecretSource for TenantSecretSource {
    fn secret<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            let sealed = self.sealed.get(name).ok_or(SecretError::NotFound)?;
            self.store
                .open_secret(&self.tenant, name, sealed)
                .map_err(|e| SecretError::Unavailable(e.to_string()))
        })
    }
}

/// One endpoint's persistent state.
pub struct EndpointStateStore {
    /// Where it is kept.
    pub store: Store,
    /// The tenant.
    pub tenant: String,
    /// The endpoint.
    pub endpoint: String,
}

impl StateStore for EndpointStateStore {
    fn get(&self) -> StateFuture<'_, Value> {
        Box::pin(async move {
            self.store
                .endpoint_state(&self.tenant, &self.endpoint)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn set(&self, value: Value) -> StateFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .set_endpoint_state(&self.tenant, &self.endpoint, &value)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
