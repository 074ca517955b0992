//! The control plane's side of the guest's secrets, state and stored-connection capabilities
//! (host/secret.rs, host/state.rs, egress/tenant.rs), made per request for one tenant and one
//! endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::Store;
use super::store::SealedConnection;
use crate::BoxError;
use crate::egress::EgressError;
use crate::egress::tenant::{ConnectionSource, StoredConnection};
use crate::host::state::{MAX_STATE_BYTES, StateError};
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

#[async_trait::async_trait]
impl SecretSource for TenantSecretSource {
    async fn secret(&self, name: &str) -> Result<String, SecretError> {
        let sealed = self.sealed.get(name).ok_or(SecretError::NotFound)?;
        self.store
            .open_secret(&self.tenant, name, sealed)
            .map_err(|e| SecretError::Unavailable(Box::new(e)))
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

#[async_trait::async_trait]
impl StateStore for EndpointStateStore {
    async fn get(&self) -> Result<Value, BoxError> {
        Ok(self
            .store
            .endpoint_state(&self.tenant, &self.endpoint)
            .await?)
    }

    async fn merge(&self, patch: Map<String, Value>) -> Result<(), StateError> {
        self.store
            .merge_endpoint_state(&self.tenant, &self.endpoint, &patch, MAX_STATE_BYTES)
            .await
            .map_err(|e| StateError::Unavailable(Box::new(e)))?
            .map_err(StateError::TooLarge)
    }
}

/// A tenant's stored connections, as the registry cached them: opened on use.
pub struct TenantConnectionSource {
    /// The store, whose key opens them.
    pub store: Store,
    /// Whose connections.
    pub tenant: String,
    /// Sealed connections by name.
    pub sealed: Arc<HashMap<String, SealedConnection>>,
}

#[async_trait::async_trait]
impl ConnectionSource for TenantConnectionSource {
    async fn connection(&self, name: &str) -> Result<StoredConnection, EgressError> {
        let sealed = self.sealed.get(name).ok_or_else(|| {
            EgressError::NotFound(format!(
                "no connection {name:?} (set it with PUT .../connections/{name})"
            ))
        })?;
        self.store
            .open_connection(&self.tenant, name, sealed)
            .map_err(|e| EgressError::Host(Box::new(e)))
    }
}
