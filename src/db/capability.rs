//! The seam between the host's database calls and PostgreSQL: host/db.rs sees only this trait.

use std::time::Instant;

/// A database call's failure, by cause; host/db.rs maps each to an ABI code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum DbError {
    /// The tenant has no database of that name (or it is not the tenant's).
    #[error("{0}")]
    NotFound(String),
    /// The call is malformed (bad identifier, option or parameter).
    #[error("{0}")]
    Invalid(String),
    /// PostgreSQL refused the statement.
    #[error("{sqlstate}: {message}")]
    Sql {
        /// The SQLSTATE code.
        sqlstate: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// The result is over the row or byte cap.
    #[error("{0}")]
    TooLarge(String),
    /// PostgreSQL cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// One tenant's databases, as a host capability.
#[async_trait::async_trait]
pub trait DatabaseCapability: Send + Sync {
    /// Runs one call (guest-sdk/ABI.md, op 16) before `deadline`; returns JSON bytes.
    async fn call(&self, request: &super::DbRequest, deadline: Instant)
    -> Result<Vec<u8>, DbError>;
}
