//! The database capability (`pq.dbconnect`): decodes the guest's call, hands it to the
//! tenant's [`DatabaseCapability`], and maps the outcome to ABI codes.

use std::sync::Arc;
use std::time::Instant;

use super::AbiError;
use crate::db::{DatabaseCapability, DbError};

/// The database slice of the host state.
#[derive(Default)]
pub struct DbSlot {
    /// The tenant's databases; `None` where the sandbox has none (e.g. `pubfn run`).
    pub capability: Option<Arc<dyn DatabaseCapability>>,
    /// When the current call must be done by.
    pub deadline: Option<Instant>,
}

impl std::fmt::Debug for DbSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSlot")
            .field("configured", &self.capability.is_some())
            .finish()
    }
}

/// `PQ_OP_DB`: a JSON database call.
pub async fn call(slot: &mut DbSlot, arg: &[u8]) -> Result<Vec<u8>, AbiError> {
    let request: serde_json::Map<String, serde_json::Value> =
        super::abi::decode_object(arg, "database call")?;
    let Some(capability) = slot.capability.clone() else {
        return Err(AbiError::new(
            AbiError::UNAVAILABLE,
            "no database configured: pq.dbconnect needs a tenant database (not available in this sandbox)",
        ));
    };
    let deadline = slot
        .deadline
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(30));
    capability
        .call(&request, deadline)
        .await
        .map_err(|error| match error {
            DbError::NotFound(message) => AbiError::new(AbiError::DENIED, message),
            DbError::Invalid(message) => AbiError::new(AbiError::INVALID, message),
            DbError::TooLarge(message) => AbiError::new(AbiError::TOO_LARGE, message),
            DbError::Sql { sqlstate, message } => AbiError::new(
                AbiError::SQL,
                serde_json::json!({"sqlstate": sqlstate, "message": message}).to_string(),
            ),
            DbError::Unavailable(message) => {
                tracing::warn!("tenant database unavailable: {message}");
                AbiError::new(AbiError::DB_UNAVAILABLE, "the database is unavailable")
            }
        })
}
