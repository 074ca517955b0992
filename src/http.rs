//! The HTTP front end: server, routing, the data plane, the admin API, and the one
//! error-to-status map. An adapter: it parses, calls `app`, and maps the error. Knows nothing
//! of wasm.

pub mod admin;
pub mod confine;
pub mod console;
pub mod cors;
pub mod data_plane;
pub mod metrics;
pub mod respond;
pub mod router;
pub mod server;

use std::sync::Arc;

pub use respond::Problem;
pub use server::{ServerLimits, Surface, serve};

use crate::app::App;

/// Everything a request handler needs; one per process.
pub struct HttpState {
    /// The use cases.
    pub app: Arc<App>,
    /// Front-end protocol limits.
    pub server_limits: ServerLimits,
    /// Counters and histograms for `/metrics`.
    pub metrics: metrics::Metrics,
    /// The bearer token `/metrics` wants; without one, the admin key.
    pub metrics_token: Option<String>,
    /// With it, each tenant's endpoints are served at `{tenant}.<domain>`, an origin of its
    /// own, and no longer below a path of a shared host.
    pub tenant_domain: Option<String>,
    /// The `Content-Security-Policy` added to every handler's response (`sandbox` unless the
    /// operator chose otherwise); `None` adds none.
    pub tenant_csp: Option<hyper::header::HeaderValue>,
    /// Proxies (the load balancer) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}
