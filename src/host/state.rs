//! The state capability (`pq.get_state()` / `pq.set_state(dict)`): one small JSON object per
//! endpoint, kept across requests and instances.

use serde_json::{Map, Value};

use super::AbiError;
use crate::BoxError;

/// Largest state, in bytes of JSON.
pub const MAX_STATE_BYTES: usize = 64 << 10;

/// One endpoint's state. An error is the host's (logged, never shown to the guest).
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// The state; an empty object if none was set.
    async fn get(&self) -> Result<Value, BoxError>;
    /// Replaces the state.
    async fn set(&self, value: Value) -> Result<(), BoxError>;
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

/// `PQ_OP_STATE_SET`: the argument is the new state, a JSON object of at most
/// [`MAX_STATE_BYTES`].
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
    let value: Map<String, Value> = super::abi::decode_object(arg, "state")?;
    store(state)?
        .set(Value::Object(value))
        .await
        .map_err(unavailable)?;
    Ok(Vec::new())
}
