//! One call's egress capability: the tenant's allow-list and stored connections over the
//! shared [`EgressClients`], and a record of every request made, for the handler's log, the
//! `Server-Timing` header and `/metrics` (method, host, status, size, time; never headers or
//! bodies).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use super::client::{EgressClients, Prepared};
use super::{
    AllowList, EgressCapability, EgressError, NetworkReason, OutboundRequest, OutboundResponse,
};

/// A tenant's stored connection, opened: its base URL and the credentials pubfn adds.
#[derive(Debug, Clone)]
pub struct StoredConnection {
    /// Every request's URL starts with it.
    pub base_url: String,
    /// Headers added to every request (replacing the guest's of the same name).
    pub headers: Vec<(String, String)>,
    /// Query parameters appended to every request.
    pub query: Vec<(String, String)>,
}

/// Where a tenant's stored connections come from (the control plane, sealed at rest).
#[async_trait::async_trait]
pub trait ConnectionSource: Send + Sync {
    /// The connection `name`; `EgressError::NotFound` if the tenant has none of that name.
    async fn connection(&self, name: &str) -> Result<StoredConnection, EgressError>;
}

/// One outbound request, as logged and counted.
#[derive(Debug, Clone)]
pub struct EgressCall {
    /// The method.
    pub method: String,
    /// The first hop's host (and port, when not the default).
    pub host: String,
    /// The response status, when one came.
    pub status: Option<u16>,
    /// `ok`, `denied`, `invalid`, `too_large`, `timeout`, `dns`, `connect`, `tls`, `protocol`
    /// or `error`: the `/metrics` result label.
    pub result: &'static str,
    /// Response body bytes.
    pub bytes: usize,
    /// How long it took.
    pub duration: Duration,
}

impl EgressCall {
    /// The handler-log line for this request.
    pub fn log_line(&self) -> String {
        let status = self
            .status
            .map_or_else(|| self.result.to_string(), |s| s.to_string());
        format!(
            "[egress] {} {} -> {} ({} bytes, {:.1} ms)",
            self.method,
            self.host,
            status,
            self.bytes,
            self.duration.as_secs_f64() * 1e3
        )
    }
}

/// Headers the guest may not set: the host frames the request and names the host itself.
const HOST_OWNED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "http2-settings",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Credentials that never follow a redirect to another origin.
const ORIGIN_BOUND_HEADERS: &[&str] = &["authorization", "cookie"];

/// The capability handed to one call of one tenant.
pub struct TenantEgress {
    /// The process's clients.
    pub clients: Arc<EgressClients>,
    /// The tenant.
    pub tenant: String,
    /// What it may reach.
    pub policy: Arc<AllowList>,
    /// Its stored connections.
    pub connections: Arc<dyn ConnectionSource>,
    /// The endpoint's cap on one response body.
    pub max_response_bytes: usize,
    /// Requests made so far.
    calls: Mutex<Vec<EgressCall>>,
}

impl TenantEgress {
    /// A capability with no requests made yet.
    pub fn new(
        clients: Arc<EgressClients>,
        tenant: String,
        policy: Arc<AllowList>,
        connections: Arc<dyn ConnectionSource>,
        max_response_bytes: usize,
    ) -> Self {
        TenantEgress {
            clients,
            tenant,
            policy,
            connections,
            max_response_bytes,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Every request this call made, in order.
    pub fn calls(&self) -> Vec<EgressCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    async fn prepare(&self, request: OutboundRequest) -> Result<Prepared, EgressError> {
        let mut origin_headers: Vec<HeaderName> = ORIGIN_BOUND_HEADERS
            .iter()
            .map(|h| HeaderName::from_static(h))
            .collect();
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EgressError::Invalid(format!("bad header name {name:?}")))?;
            if HOST_OWNED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("proxy-") {
                continue;
            }
            let value = HeaderValue::from_bytes(value)
                .map_err(|_| EgressError::Invalid(format!("bad value for header {name}")))?;
            headers.append(name, value);
        }
        let mut raw_url = request.url.clone();
        let url = match &request.connection {
            None => parse_url(&request.url)?,
            Some(name) => {
                let stored = self.connections.connection(name).await?;
                let path = &request.url;
                if path.contains("://") || path.starts_with("//") {
                    return Err(EgressError::Invalid(format!(
                        "a call through connection {name:?} takes a path, not the URL {path:?}"
                    )));
                }
                raw_url = join(&stored.base_url, path);
                let mut url = parse_url(&raw_url)?;
                if !stored.query.is_empty() {
                    let mut pairs = url.query_pairs_mut();
                    for (key, value) in &stored.query {
                        pairs.append_pair(key, value);
                    }
                }
                for (name, value) in &stored.headers {
                    let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) else {
                        continue; // Checked when stored; skipped rather than sent broken.
                    };
                    headers.insert(name.clone(), value);
                    origin_headers.push(name);
                }
                url
            }
        };
        Ok(Prepared {
            method: request.method,
            url,
            raw_url,
            headers,
            origin_headers,
            body: request.body,
            follow_redirects: request.follow_redirects,
        })
    }
}

fn parse_url(text: &str) -> Result<url::Url, EgressError> {
    url::Url::parse(text).map_err(|e| EgressError::Invalid(format!("bad URL {text:?}: {e}")))
}

/// `base` and `path` with exactly one `/` between them.
fn join(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[async_trait::async_trait]
impl EgressCapability for TenantEgress {
    async fn send(
        &self,
        request: OutboundRequest,
        deadline: Instant,
    ) -> Result<OutboundResponse, EgressError> {
        let started = Instant::now();
        let method = request.method.to_string();
        let deadline = match request.timeout {
            Some(timeout) => deadline.min(started + timeout),
            None => deadline,
        };
        let mut host = String::new();
        let outcome = async {
            let prepared = self.prepare(request).await?;
            host = match (prepared.url.host_str(), prepared.url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => String::new(),
            };
            self.clients
                .send(
                    &self.tenant,
                    &self.policy,
                    prepared,
                    deadline,
                    self.max_response_bytes,
                )
                .await
        }
        .await;
        let call = EgressCall {
            method,
            host,
            status: outcome.as_ref().ok().map(|r| r.status),
            result: match &outcome {
                Ok(_) => "ok",
                Err(EgressError::Denied(_)) => "denied",
                Err(EgressError::Invalid(_) | EgressError::NotFound(_)) => "invalid",
                Err(EgressError::TooLarge(_)) => "too_large",
                Err(EgressError::Network { reason, .. }) => match reason {
                    NetworkReason::Timeout => "timeout",
                    NetworkReason::Dns => "dns",
                    NetworkReason::Connect => "connect",
                    NetworkReason::Tls => "tls",
                    NetworkReason::Protocol => "protocol",
                },
                Err(EgressError::Host(_)) => "error",
            },
            bytes: outcome.as_ref().map_or(0, |r| r.body.len()),
            duration: started.elapsed(),
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
        outcome
    }
}
