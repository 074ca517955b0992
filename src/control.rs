//! The control plane: tenants, endpoints, script versions and tokens, kept in PostgreSQL and
//! cached for the data plane.

pub mod change;
pub mod logs;
pub mod model;
pub mod registry;
pub mod replays;
pub mod route;
pub mod schema;
pub mod sealed;
pub mod services;
pub mod store;
pub mod usage;

pub use change::{Change, ChangeKind};
pub use logs::{LogRetention, LogSink};
pub use registry::Registry;
pub use sealed::SealingKey;
pub use store::{Store, TokenState};

pub use crate::BoxError;

/// A control-plane failure; `http::respond` maps each kind to its status.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or clashes with something that does.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The metadata database cannot be reached.
    #[error("metadata database unavailable")]
    Unavailable(#[source] BoxError),
    /// A metadata query failed, and not because of the caller's input.
    #[error("metadata query failed")]
    Query(#[source] tokio_postgres::Error),
    /// A sealed value cannot be opened.
    #[error(transparent)]
    Sealed(#[from] sealed::SealError),
    /// Stored metadata does not read back as what was stored.
    #[error("stored {what} is malformed")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Why it does not read.
        #[source]
        source: BoxError,
    },
}

impl ControlError {
    /// Stored metadata that does not read: `what` it is, and why.
    pub fn corrupt(what: &'static str, source: impl Into<BoxError>) -> Self {
        ControlError::Corrupt {
            what,
            source: source.into(),
        }
    }
}

impl From<tokio_postgres::Error> for ControlError {
    fn from(error: tokio_postgres::Error) -> Self {
        use std::error::Error as _;
        let Some(db) = error.as_db_error() else {
            // A lost connection is unavailability; anything else (a row count that cannot be)
            // is a bug here.
            let io = error.source().is_some_and(|s| s.is::<std::io::Error>());
            return if error.is_closed() || io {
                ControlError::Unavailable(Box::new(error))
            } else {
                ControlError::Query(error)
            };
        };
        let message = db.message().to_string();
        match db.code().code() {
            code if crate::db::server_unavailable(code) => {
                ControlError::Unavailable(Box::new(error))
            }
            // check_violation: a name outside the allowed pattern, etc.
            "23514" => ControlError::Invalid(format!("rejected by the database: {message}")),
            "23505" => ControlError::Conflict(message),
            // What the row refers to was deleted meanwhile (a tenant, concurrently).
            "23503" => ControlError::NotFound(format!("no longer exists: {message}")),
            // Text PostgreSQL cannot store (a NUL character, say): the caller's input.
            // A timestamp that is not one (a usage query's `from`): the caller's input.
            "22007" | "22008" => ControlError::Invalid(message),
            "22021" | "22P05" => {
                ControlError::Invalid(format!("rejected by the database: {message}"))
            }
            _ => ControlError::Query(error),
        }
    }
}
