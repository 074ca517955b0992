//! Handlers' outbound HTTP, the host side of `PQ_OP_HTTP` (host/egress.rs is the guest-facing
//! call). Deny by default: a tenant reaches only the hosts its operator allow-listed, and only
//! at public addresses.
//!
//! | part | what it holds |
//! | --- | --- |
//! | [`policy`] | the allow-list: parsing its entries, matching a URL against it |
//! | [`address`] | which resolved addresses are never connected to (SSRF) |
//! | [`connector`] | resolve once, check every address, connect to a checked one |
//! | [`client`] | the process's TLS setup and per-tenant connection pools; redirects, caps |
//! | [`tenant`] | one call's capability: the tenant's policy, connections and usage |

pub mod address;
pub mod client;
pub mod connector;
pub mod policy;
pub mod tenant;

pub use client::{EgressClients, EgressSettings};
pub use policy::{AllowList, Destination};
pub use tenant::{EgressCall, TenantEgress};

use std::time::Duration;

/// One outbound request, as the guest asked for it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The method.
    pub method: hyper::Method,
    /// The URL as the guest wrote it (a path below the base URL when `connection` is set).
    pub url: String,
    /// Headers in order; values are bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: bytes::Bytes,
    /// The tenant's stored connection to go through, if any.
    pub connection: Option<String>,
    /// Whether the host follows redirects (each hop checked).
    pub follow_redirects: bool,
    /// The guest's own timeout, within the call's deadline.
    pub timeout: Option<Duration>,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// The status.
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
    /// Headers in order; values are bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The URL that answered (after redirects).
    pub url: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub version: &'static str,
    /// The body, de-chunked (content codings left as they are).
    pub body: bytes::Bytes,
}

/// What went wrong on the network, as the guest's exception will say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkReason {
    /// The deadline (the guest's, or the call's) passed.
    Timeout,
    /// The name did not resolve.
    Dns,
    /// No connection could be made.
    Connect,
    /// The TLS handshake failed (e.g. an untrusted certificate).
    Tls,
    /// The peer broke HTTP.
    Protocol,
}

/// Why an outbound request failed; each variant says whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// Guest: the destination is not allowed (allow-list or address).
    #[error("{0}")]
    Denied(String),
    /// Guest: a malformed URL, method or header.
    #[error("{0}")]
    Invalid(String),
    /// Guest: no stored connection of that name.
    #[error("{0}")]
    NotFound(String),
    /// Guest (its endpoint's limit): the response is over the byte cap.
    #[error("{0}")]
    TooLarge(String),
    /// The network or the other end failed.
    #[error("{message}")]
    Network {
        /// What kind of failure.
        reason: NetworkReason,
        /// Its description, safe to show the guest.
        message: String,
    },
    /// The host failed (e.g. a stored connection cannot be unsealed); logged.
    #[error("egress failed on the host")]
    Host(#[source] crate::BoxError),
}

impl EgressError {
    /// A network failure.
    pub fn network(reason: NetworkReason, message: impl Into<String>) -> Self {
        EgressError::Network {
            reason,
            message: message.into(),
        }
    }
}

/// What a handler's outbound requests go through, for one call.
#[async_trait::async_trait]
pub trait EgressCapability: Send + Sync {
    /// Sends `request`, done by `deadline`.
    async fn send(
        &self,
        request: OutboundRequest,
        deadline: std::time::Instant,
    ) -> Result<OutboundResponse, EgressError>;
}
