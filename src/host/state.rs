//! The state capability (`pq.get_state()` / `pq.set_state(dict)`): one small JSON object per
//! endpoint, kept across requests and instances.

use serde_json::{Map, Value};

use super::AbiError;
use crate::BoxError;

/// Largest state, in bytes of JSON.
pub const MAX_STATE_BYTES: usize = 64 << 10;

/// Why a state could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The merged state would be over [`MAX_STATE_BYTES`] (the guest's fault).
    #[error("the merged state would be {0} bytes of JSON; at most {MAX_STATE_BYTES}")]
    TooLarge(usize),
    /// The store failed (the host's; logged, never shown to the guest).
    #[error("state unavailable")]
    Unavailable(#[source] BoxError),
}

/// One endpoint's state. A `get` error is the host's (logged, never shown to the guest).
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// The state; an empty object if none was set.
    async fn get(&self) -> Result<Value, BoxError>;
    /// Merges `patch`'s top-level keys into the state (Peliqan's `set_state`), if the result
    /// fits in [`MAX_STATE_BYTES`].
    async fn merge(&self, patch: Map<String, Value>) -> Result<(), StateError>;
}

fn store(store: Option<&dyn StateStore>) -> Result<&dyn StateStore, AbiError> {
    store.ok_or_else(|| {
        AbiError::new(
            AbiError::UNAVAILABLE,
            "no state in this sandbox (pq.get_state needs a deployed endpoint)",
        )
    })
}

fn unavailable(reason: BoxError) -> AbiError {
    tracing::error!("endpoint state failed: {reason:?}");
    AbiError::new(AbiError::HOST, "state is unavailable right now")
}

/// `PQ_OP_STATE_GET`: the result is the state as a JSON object.
pub async fn get(state: Option<&dyn StateStore>) -> Result<Vec<u8>, AbiError> {
    let value = store(state)?.get().await.map_err(unavailable)?;
    Ok(serde_json::to_vec(&value).expect("JSON values serialise"))
}

/// `PQ_OP_STATE_SET`: the argument is a JSON object of at most [`MAX_STATE_BYTES`], merged
/// into the state by its top-level keys.
pub async fn set(state: Option<&dyn StateStore>, arg: &[u8]) -> Result<Vec<u8>, AbiError> {
    if arg.len() > MAX_STATE_BYTES {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            format!(
                "state is {} bytes of JSON; at most {MAX_STATE_BYTES}",
                arg.len()
            ),
        ));
    }
    let patch: Map<String, Value> = super::abi::decode_object(arg, "state")?;
    match store(state)?.merge(patch).await {
        Ok(()) => Ok(Vec::new()),
        Err(error @ StateError::TooLarge(_)) => {
            Err(AbiError::new(AbiError::TOO_LARGE, error.to_string()))
        }
        Err(StateError::Unavailable(reason)) => Err(unavailable(reason)),
    }
}
