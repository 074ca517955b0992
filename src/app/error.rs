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
    /// A package change the tenant asked for cannot be made (a platform wheel, a bad name,
    /// past the quota): nothing was installed.
    #[error(transparent)]
    Package(#[from] crate::packages::PackageError),
    /// A module of the preload list raised, or ran past the CPU limit, while the snapshot was
    /// built: nothing was installed.
    #[error("{message}")]
    Preload {
        /// What failed.
        message: String,
        /// Its traceback and output.
        traceback: String,
    },
    /// No tenant of that name, or no endpoint at that path (the same answer for both).
    #[error("no such endpoint")]
    NoSuchEndpoint,
    /// The request body does not match the endpoint's request schema: how.
    #[error("the request body does not match the endpoint's request schema")]
    BodyViolations(Vec<crate::control::schema::Violation>),
    /// The request body is of a type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
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
    /// Something of the host's failed: the sandbox, or a tenant database the host itself uses.
    #[error("{what}")]
    Host {
        /// What failed.
        what: &'static str,
        /// Why.
        #[source]
        source: crate::BoxError,
    },
}

impl AppError {
    /// The host failed at `what`, because of `source`.
    pub fn host(what: &'static str, source: impl Into<crate::BoxError>) -> Self {
        AppError::Host {
            what,
            source: source.into(),
        }
    }
}

/// An error and every cause below it, `outer: inner: innermost`: what a log line or an
/// operator's terminal shows.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` and wrappers repeat their cause's message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_spelled_out_once() {
        let io = std::io::Error::other("connection refused");
        let error = crate::control::ControlError::Unavailable(Box::new(io));
        assert_eq!(
            describe(&error),
            "metadata database unavailable: connection refused"
        );
        let app = AppError::Control(error);
        assert_eq!(
            describe(&app),
            "metadata database unavailable: connection refused"
        );
    }
}
