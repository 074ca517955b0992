//! The guest's account of why a call failed (`PQ_OP_ERROR_REPORT`).

use serde::Deserialize;

use super::AbiError;

/// Largest report accepted; tracebacks beyond it are the guest's problem, not the host's.
pub const MAX_REPORT_BYTES: usize = 256 << 10;

/// What kind of failure the guest reports (`kind` of the report, guest-sdk/ABI.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// The script does not compile.
    Syntax,
    /// Module code or the handler raised.
    #[default]
    Exception,
    /// A `MemoryError`.
    Memory,
    /// A `RecursionError`.
    Recursion,
    /// `sys.exit`.
    Exit,
    /// `pq.DatabaseUnavailable` escaped the handler.
    DbUnavailable,
    /// The handler's return value cannot become a response.
    Return,
    /// The script has no callable `handler`.
    NoHandler,
    /// The request cannot be served as sent (a malformed JSON body, a missing form key):
    /// `status` says how the client is answered (400 or 415).
    ClientError,
    /// A module of the tenant's preload list failed to import while its snapshot was built.
    Preload,
}

/// Why the guest says a compile, load or handle call failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct GuestErrorReport {
    /// What kind of failure.
    pub kind: ReportKind,
    /// One line, e.g. `ZeroDivisionError: division by zero`.
    pub message: String,
    /// The exception's type name, if any.
    #[serde(rename = "type")]
    pub exception_type: Option<String>,
    /// The traceback, trimmed to the script's own frames.
    pub traceback: Option<String>,
    /// 1-based line of a syntax error.
    pub line: Option<u32>,
    /// 1-based column of a syntax error.
    pub column: Option<u32>,
    /// The offending source line of a syntax error.
    pub text: Option<String>,
    /// The status a `client_error` asks for.
    pub status: Option<u16>,
}

/// Decodes a report, refusing oversized or malformed ones.
pub fn decode(arg: &[u8]) -> Result<GuestErrorReport, AbiError> {
    if arg.len() > MAX_REPORT_BYTES {
        return Err(AbiError::new(AbiError::TOO_LARGE, "error report too large"));
    }
    super::abi::decode_object(arg, "error report")
}
