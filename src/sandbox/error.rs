//! What can go wrong in the sandbox: set-up failures (always the host's) and failed calls
//! (which say exactly why, so the HTTP layer can map each cause to its status).

use crate::BoxError;
use crate::host::GuestErrorReport;

/// A failure to set the sandbox up: always the host's (or the operator's) fault.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The runtime directory is missing, broken or of another ABI version.
    #[error("python runtime: {what}")]
    Runtime {
        /// What went wrong.
        what: String,
        /// Why, if another error says it.
        #[source]
        source: Option<BoxError>,
    },
    /// The engine could not be built.
    #[error("engine: {what}")]
    Engine {
        /// What went wrong.
        what: String,
        /// Why.
        #[source]
        source: Option<BoxError>,
    },
    /// A module of the tenant's preload list raised, or did not finish in time, while its
    /// snapshot was built: the tenant's fault, reported with the traceback.
    #[error("{message}")]
    Preload {
        /// What failed, e.g. `preloading "slow": ZeroDivisionError: division by zero`.
        message: String,
        /// The traceback, trimmed to the tenant's own files, and the captured output.
        traceback: String,
    },
    /// A snapshot could not be built, stored or compiled.
    #[error("snapshot: {what}")]
    Snapshot {
        /// What went wrong.
        what: String,
        /// Why.
        #[source]
        source: Option<BoxError>,
    },
}

impl SandboxError {
    /// The runtime is missing or broken: `what`, because of `source`.
    pub(crate) fn runtime(what: impl Into<String>, source: Option<BoxError>) -> Self {
        SandboxError::Runtime {
            what: what.into(),
            source,
        }
    }

    /// The engine failed to build: `what`, because of `source`.
    pub(crate) fn engine(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        SandboxError::Engine {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// A snapshot failed: `what`, because of `source`.
    pub(crate) fn snapshot(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        SandboxError::Snapshot {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// Why a call into the guest failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The script does not compile.
    Syntax(Box<GuestErrorReport>),
    /// Module code or the handler raised (including `sys.exit`).
    Exception(Box<GuestErrorReport>),
    /// The handler let `pq.DatabaseUnavailable` escape: the tenant's database is down.
    DatabaseUnavailable(String),
    /// The script has no callable `handler`.
    NoHandler(String),
    /// The handler returned something that is not a response.
    BadReturn(String),
    /// The request cannot be served as sent (the SDK's BadRequest, as Flask raises it): 400,
    /// or 415 for a body that is not JSON where JSON was read.
    ClientError {
        /// 400 or 415.
        status: u16,
        /// What is wrong with the request.
        message: String,
    },
    /// The guest ran past its CPU limit.
    CpuLimit {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The call ran past its wall-clock limit.
    WallLimit {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The guest asked for more memory than its limit.
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: usize,
    },
    /// The guest's stack overflowed (runaway recursion below Python's own check).
    StackOverflow,
    /// The guest ended its instance with `os._exit` (or WASI `proc_exit`).
    Exited(i32),
    /// The interpreter trapped for another reason.
    Crashed(String),
    /// The host failed; the guest is not to blame.
    Host(String),
}

/// A failed call, with whatever the guest printed before it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}")]
pub struct CallError {
    /// What went wrong.
    pub kind: CallErrorKind,
    /// Captured stdout and stderr.
    pub output: String,
}

impl CallError {
    pub(crate) fn host(message: String) -> Self {
        CallError {
            kind: CallErrorKind::Host(message),
            output: String::new(),
        }
    }
}

impl CallErrorKind {
    /// The script's traceback, if it raised or did not compile.
    pub fn traceback(&self) -> Option<&str> {
        match self {
            CallErrorKind::Exception(report) | CallErrorKind::Syntax(report) => {
                report.traceback.as_deref()
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallErrorKind::Syntax(report) => {
                write!(f, "syntax error at line {}", report.line.unwrap_or(0))?;
                write!(
                    f,
                    ", column {}: {}",
                    report.column.unwrap_or(0),
                    report.message
                )
            }
            CallErrorKind::Exception(report) => match &report.traceback {
                Some(traceback) if !traceback.is_empty() => write!(f, "{}", traceback.trim_end()),
                _ => write!(f, "{}", report.message),
            },
            CallErrorKind::NoHandler(message) => write!(f, "{message}"),
            CallErrorKind::DatabaseUnavailable(message) => {
                write!(f, "database unavailable: {message}")
            }
            CallErrorKind::BadReturn(message) => write!(f, "bad handler return: {message}"),
            CallErrorKind::ClientError { status, message } => {
                write!(f, "the request was refused ({status}): {message}")
            }
            CallErrorKind::CpuLimit { limit_ms } => {
                write!(f, "CPU time limit of {limit_ms} ms exceeded")
            }
            CallErrorKind::WallLimit { limit_ms } => {
                write!(f, "time limit of {limit_ms} ms exceeded")
            }
            CallErrorKind::MemoryLimit { limit_bytes } => {
                write!(f, "memory limit of {} MiB exceeded", limit_bytes >> 20)
            }
            CallErrorKind::StackOverflow => write!(f, "stack overflow (recursion too deep)"),
            CallErrorKind::Exited(code) => {
                write!(f, "the handler ended its interpreter (exit code {code})")
            }
            CallErrorKind::Crashed(message) => write!(f, "the interpreter crashed: {message}"),
            CallErrorKind::Host(message) => write!(f, "internal error: {message}"),
        }
    }
}
