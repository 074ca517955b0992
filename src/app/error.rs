//! Why a use case failed, by cause; `http::respond` maps each to its status.

use crate::auth::AuthError;
use crate::control::ControlError;
use crate::sandbox::CallError;

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The metadata said no (not found, conflict, invalid) or could not answer.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The caller is not authenticated, or not allowed to do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The request asks for something that cannot be done as asked.
    #[error("{0}")]
    Invalid(String),
    /// A script that does not compile, with its position.
    #[error("{message}")]
    ScriptSyntax {
        /// What is wrong.
        message: String,
        /// 1-based line.
        line: Option<u32>,
        /// 1-based column.
        column: Option<u32>,
    },
    /// No tenant of that name, or no endpoint at that path (the same answer for both).
    #[error("no such endpoint")]
    NoSuchEndpoint,
    /// Endpoints exist at that path, with other methods.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    /// The tenant's concurrency cap is reached.
    #[error("too many concurrent requests for this tenant")]
    TooManyRequests,
    /// The handler failed or ran into a limit.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Signing a token failed: the host's fault, never the caller's.
    #[error("signing a token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}
