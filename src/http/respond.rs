//! The one place where every error becomes an HTTP status and an RFC 9457
//! `application/problem+json` body.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::app::AppError;
use crate::auth::AuthError;
use crate::control::ControlError;
use crate::sandbox::CallErrorKind;

/// The response body type of the whole server.
pub type Body = Full<Bytes>;

/// Everything that can go wrong with a request, by cause.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// A handler script that does not compile (deploy time), with its position.
    #[error("{message}")]
    ScriptSyntax {
        /// What is wrong.
        message: String,
        /// 1-based line.
        line: Option<u32>,
        /// 1-based column.
        column: Option<u32>,
    },
    /// A tenant's preload list failed to import while its snapshot was built.
    #[error("{message}")]
    Preload {
        /// What failed.
        message: String,
        /// The traceback, for the tenant.
        traceback: String,
    },
    /// Not authenticated.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Unknown tenant, route or record.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    /// Clashes with existing state.
    #[error("{0}")]
    Conflict(String),
    /// A request body that misses its endpoint's request schema: each violation.
    #[error("the request body does not match the endpoint's request schema")]
    BodyViolations(Vec<crate::control::schema::Violation>),
    /// A body of a type the handler cannot read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Body over the limit.
    #[error("request body over the limit of {0} bytes")]
    TooLarge(usize),
    /// The tenant's concurrency cap is reached.
    #[error("too many concurrent requests for this tenant")]
    TooManyRequests,
    /// The handler failed; details go to the tenant's logs, never to the client.
    #[error("the handler failed")]
    HandlerFailed,
    /// The handler returned something that is not a response.
    #[error("the handler returned an invalid response: {0}")]
    BadReturn(String),
    /// A database is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// CPU or wall deadline.
    #[error("{0}")]
    Timeout(String),
    /// Our fault.
    #[error("internal error")]
    Internal(String),
}

impl From<ControlError> for Problem {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::NotFound(m) => Problem::NotFound(m),
            ControlError::Conflict(m) => Problem::Conflict(m),
            ControlError::Invalid(m) => Problem::BadRequest(m),
            // The client learns what is down, the log also why.
            ControlError::Unavailable(_) => {
                tracing::warn!("{}", crate::app::describe(&error));
                Problem::Unavailable(error.to_string())
            }
            ControlError::Query(_) | ControlError::Sealed(_) | ControlError::Corrupt { .. } => {
                Problem::Internal(crate::app::describe(&error))
            }
        }
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Control(error) => error.into(),
            AppError::Auth(error) => Problem::Auth(error),
            AppError::Invalid(message) => Problem::BadRequest(message),
            AppError::ScriptSyntax {
                message,
                line,
                column,
            } => Problem::ScriptSyntax {
                message,
                line,
                column,
            },
            AppError::Package(error) => Problem::BadRequest(error.to_string()),
            AppError::Preload { message, traceback } => Problem::Preload { message, traceback },
            AppError::NoSuchEndpoint => Problem::NotFound(error.to_string()),
            AppError::MethodNotAllowed(allowed) => Problem::MethodNotAllowed(allowed),
            AppError::BodyViolations(violations) => Problem::BodyViolations(violations),
            AppError::UnsupportedMediaType(message) => Problem::UnsupportedMediaType(message),
            AppError::TooManyRequests => Problem::TooManyRequests,
            AppError::Call(error) => Problem::for_call(&error.kind),
            AppError::Signing(_) | AppError::Host { .. } => {
                Problem::Internal(crate::app::describe(&error))
            }
        }
    }
}

impl Problem {
    /// The problem for a handler call that failed: details go to the tenant's logs, never to
    /// the client.
    pub fn for_call(kind: &CallErrorKind) -> Problem {
        match kind {
            CallErrorKind::BadReturn(m) => Problem::BadReturn(m.clone()),
            CallErrorKind::ClientError {
                status: 415,
                message,
            } => Problem::UnsupportedMediaType(message.clone()),
            CallErrorKind::ClientError { message, .. } => Problem::BadRequest(message.clone()),
            CallErrorKind::CpuLimit { .. } | CallErrorKind::WallLimit { .. } => {
                Problem::Timeout(kind.to_string())
            }
            CallErrorKind::Host(m) => Problem::Internal(m.clone()),
            CallErrorKind::DatabaseUnavailable(_) => {
                Problem::Unavailable("the database is unavailable".into())
            }
            _ => Problem::HandlerFailed,
        }
    }
}

impl Problem {
    /// The status for this cause.
    pub fn status(&self) -> StatusCode {
        match self {
            Problem::BadRequest(_)
            | Problem::ScriptSyntax { .. }
            | Problem::Preload { .. }
            | Problem::BodyViolations(_) => StatusCode::BAD_REQUEST,
            Problem::Auth(AuthError::Forbidden(_)) => StatusCode::FORBIDDEN,
            Problem::Auth(_) => StatusCode::UNAUTHORIZED,
            Problem::NotFound(_) => StatusCode::NOT_FOUND,
            Problem::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Problem::Conflict(_) => StatusCode::CONFLICT,
            Problem::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Problem::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Problem::HandlerFailed | Problem::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Problem::BadReturn(_) => StatusCode::BAD_GATEWAY,
            Problem::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The problem+json response; `request_id` is named in the body of 5xx answers so a
    /// tenant can find the details in its logs.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let status = self.status();
        if let Problem::Internal(detail) = &self {
            tracing::error!(request_id, "internal error: {detail}");
        }
        let mut body = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "request_id": request_id,
        });
        if let Problem::ScriptSyntax { line, column, .. } = &self {
            body["line"] = json!(line);
            body["column"] = json!(column);
        }
        if let Problem::Preload { traceback, .. } = &self {
            body["traceback"] = json!(traceback);
        }
        if let Problem::BodyViolations(violations) = &self {
            body["violations"] = json!(violations);
        }
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Problem::Auth(AuthError::Missing | AuthError::Invalid(_)) => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pubfn\""),
                );
            }
            Problem::MethodNotAllowed(allowed) => {
                if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                    headers.insert(ALLOW, value);
                }
            }
            Problem::TooManyRequests => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
