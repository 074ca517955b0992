//! The database capability (`pq.dbconnect`): decodes the guest's call, hands it to the
//! tenant's [`DatabaseCapability`], and maps the outcome to ABI codes.

use std::time::Instant;

use super::AbiError;
use crate::db::columns::Layout;
use crate::db::{DatabaseCapability, DbError, DbRequest};

/// `PQ_OP_DB`: a JSON database call.
pub async fn call(
    capability: Option<&dyn DatabaseCapability>,
    deadline: Instant,
    arg: &[u8],
    kept: &mut super::rows::KeptRows,
) -> Result<Vec<u8>, AbiError> {
    let request: DbRequest = super::abi::decode_object(arg, "database call")?;
    let Some(capability) = capability else {
        return Err(AbiError::new(
            AbiError::UNAVAILABLE,
            "no database configured: pq.dbconnect needs a tenant database (not available in this sandbox)",
        ));
    };
    let result = capability
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
        })?;
    // A fetch that asks for it is answered with a handle: the rows stay here unless Python
    // touches them (`host/rows.rs`).
    match &request {
        // The result is the host's own: failing to read it is the host's fault, not the guest's.
        DbRequest::Fetch(fetch) if fetch.layout == Layout::Columns => {
            crate::db::columns::transpose(&result).map_err(|e| {
                tracing::error!("transposing a fetch's rows into columns: {e}");
                AbiError::new(
                    AbiError::HOST,
                    "the host could not lay the rows out as columns",
                )
            })
        }
        DbRequest::Fetch(fetch) if let Some(options) = &fetch.render => {
            Ok(kept.keep(result, options).unwrap_or_else(|raw| raw))
        }
        _ => Ok(result),
    }
}
