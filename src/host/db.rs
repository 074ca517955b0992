//! The database capability (`pq.dbconnect`). Tenant databases arrive with the data issue;
//! until then a sandbox has no database, and every call says so clearly.

use super::AbiError;

/// The database slice of the host state.
#[derive(Debug, Default)]
pub struct DbSlot {
    _private: (),
}

/// `PQ_OP_DB`: a JSON database call.
pub async fn call(_slot: &mut DbSlot, arg: &[u8]) -> Result<Vec<u8>, AbiError> {
    // Validate the payload even though no database exists, so garbage is reported as garbage.
    super::abi::decode_object::<serde_json::Map<String, serde_json::Value>>(arg, "database call")?;
    Err(AbiError::new(
        AbiError::UNAVAILABLE,
        "no database configured: pq.dbconnect needs a tenant database (not available in this sandbox)",
    ))
}
