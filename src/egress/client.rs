//! The process's outbound HTTP client: one TLS setup (the system's roots plus the operator's
//! `--egress-ca-file`), and per tenant a connection pool and a cap on calls in flight, so a
//! tenant reuses its own connections and never another's. Redirects are followed here, each
//! hop checked as the first was.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use super::connector::{CheckedConnector, ConnectError};
use super::policy::{AllowList, Destination, DestinationHost, Unusable};
use super::{EgressError, NetworkReason, OutboundResponse, address};

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// The operator's egress settings (`serve --egress-*`).
#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// Lets allow-listed destinations be loopback addresses (tests, local development).
    pub allow_loopback: bool,
    /// Extra trusted roots, PEM.
    pub ca_file: Option<PathBuf>,
    /// Outbound requests in flight per tenant; more wait for one to finish.
    pub max_in_flight_per_tenant: usize,
}

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            allow_loopback: false,
            ca_file: None,
            max_in_flight_per_tenant: 16,
        }
    }
}

type HttpsClient = Client<HttpsConnector<CheckedConnector>, Full<Bytes>>;

/// Every tenant's outbound connections.
pub struct EgressClients {
    settings: EgressSettings,
    connector: HttpsConnector<CheckedConnector>,
    tenants: DashMap<String, (HttpsClient, Arc<Semaphore>)>,
}

/// One hop's request, checked and ready to send.
pub struct Prepared {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: url::Url,
    /// The URL as written, for the IPv4-form check.
    pub raw_url: String,
    /// Headers to send.
    pub headers: HeaderMap,
    /// Headers sent only to the first hop's origin (credentials of a stored connection, and
    /// `authorization`/`cookie`, which browsers also drop across origins).
    pub origin_headers: Vec<HeaderName>,
    /// The body.
    pub body: Bytes,
    /// Whether to follow redirects.
    pub follow_redirects: bool,
}

impl EgressClients {
    /// The clients, with the TLS roots loaded; a bad `--egress-ca-file` is an error.
    pub fn new(settings: EgressSettings) -> Result<Arc<Self>, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Machines without a system store still work with an operator's CA; an unreadable
        // system store is not fatal, an unreadable operator file is.
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if let Some(path) = &settings.ca_file {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("--egress-ca-file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--egress-ca-file {}: no certificates in it",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("--egress-ca-file {}: {e}", path.display()))?;
            }
        }
        tracing::debug!(system_roots = added, "egress TLS roots loaded");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(CheckedConnector {
                allow_loopback: settings.allow_loopback,
            });
        Ok(Arc::new(EgressClients {
            settings,
            connector,
            tenants: DashMap::new(),
        }))
    }

    /// The settings in force.
    pub fn settings(&self) -> &EgressSettings {
        &self.settings
    }

    /// Drops a tenant's pooled connections.
    pub fn forget_tenant(&self, tenant: &str) {
        self.tenants.remove(tenant);
    }

    fn tenant(&self, tenant: &str) -> (HttpsClient, Arc<Semaphore>) {
        let entry = self.tenants.entry(tenant.to_string()).or_insert_with(|| {
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(std::time::Duration::from_secs(30))
                .pool_max_idle_per_host(8)
                .build(self.connector.clone());
            let permits = Arc::new(Semaphore::new(
                self.settings.max_in_flight_per_tenant.max(1),
            ));
            (client, permits)
        });
        entry.clone()
    }

    /// Checks `url` against `policy` and the address rules that can be judged before
    /// resolving (an address written in the URL); names are checked by the connector.
    pub fn check(&self, policy: &AllowList, url: &url::Url, raw: &str) -> Result<(), EgressError> {
        let destination = Destination::of(url, raw).map_err(|unusable| match unusable {
            Unusable::Malformed(why) => EgressError::Invalid(why),
            Unusable::AmbiguousAddress(why) => EgressError::Denied(why),
        })?;
        if !policy.allows(&destination) {
            return Err(EgressError::Denied(format!(
                "egress to {destination} is not allowed: not on the tenant's egress allow-list"
            )));
        }
        if let DestinationHost::Address(ip) = destination.host {
            // `--egress-allow-loopback` covers names only (see connector.rs).
            if let Some(why) = address::refusal(ip, false) {
                return Err(EgressError::Denied(format!(
                    "egress to {destination} is not allowed: {why}"
                )));
            }
        }
        Ok(())
    }

    /// Sends `request` for `tenant`, following redirects if asked, each hop within `policy`;
    /// the whole exchange ends by `deadline` and reads at most `max_bytes` of body.
    pub async fn send(
        &self,
        tenant: &str,
        policy: &AllowList,
        mut request: Prepared,
        deadline: Instant,
        max_bytes: usize,
    ) -> Result<OutboundResponse, EgressError> {
        let (client, permits) = self.tenant(tenant);
        let deadline = tokio::time::Instant::from_std(deadline);
        let timeout = || EgressError::network(NetworkReason::Timeout, "the request timed out");
        let _permit = tokio::time::timeout_at(deadline, permits.acquire_owned())
            .await
            .map_err(|_| timeout())?
            .map_err(|_| timeout())?;
        let first_origin = request.url.origin();
        for _hop in 0..=MAX_REDIRECTS {
            self.check(policy, &request.url, &request.raw_url)?;
            if request.url.origin() != first_origin {
                for name in &request.origin_headers {
                    request.headers.remove(name);
                }
            }
            let response =
                tokio::time::timeout_at(deadline, exchange(&client, &request, max_bytes))
                    .await
                    .map_err(|_| timeout())??;
            let location = response
                .headers
                .iter()
                .find(|(name, _)| name == "location")
                .and_then(|(_, value)| std::str::from_utf8(value).ok())
                .and_then(|location| request.url.join(location).ok());
            let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            match location {
                Some(next) if redirect && request.follow_redirects => {
                    // As browsers do: 303, and 301/302 after a POST, become a GET without body.
                    let to_get = response.status == 303
                        || (matches!(response.status, 301 | 302) && request.method == Method::POST);
                    if to_get && request.method != Method::HEAD {
                        request.method = Method::GET;
                        request.body = Bytes::new();
                        request.headers.remove(hyper::header::CONTENT_TYPE);
                    }
                    request.raw_url = next.to_string();
                    request.url = next;
                }
                _ => return Ok(response),
            }
        }
        Err(EgressError::network(
            NetworkReason::Protocol,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }
}

/// One request and its whole response body.
async fn exchange(
    client: &HttpsClient,
    request: &Prepared,
    max_bytes: usize,
) -> Result<OutboundResponse, EgressError> {
    let mut outgoing = Request::builder()
        .method(request.method.clone())
        .uri(request.url.as_str())
        .body(Full::new(request.body.clone()))
        .map_err(|e| EgressError::Invalid(format!("cannot send to {}: {e}", request.url)))?;
    *outgoing.headers_mut() = request.headers.clone();
    let response = client.request(outgoing).await.map_err(from_client_error)?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, max_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                EgressError::TooLarge(format!(
                    "the response from {} is over the endpoint's {max_bytes}-byte egress limit",
                    request.url.host_str().unwrap_or_default()
                ))
            } else {
                EgressError::network(
                    NetworkReason::Protocol,
                    format!("reading the response: {e}"),
                )
            }
        })?
        .to_bytes();
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| parts.status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    Ok(OutboundResponse {
        status: parts.status.as_u16(),
        reason,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        url: request.url.to_string(),
        version: if parts.version == hyper::Version::HTTP_2 {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        },
        body,
    })
}

/// Reads what failed out of the client's error chain.
fn from_client_error(error: hyper_util::client::legacy::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(connect) = current.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Denied { .. } => {
                    EgressError::Denied(format!("egress is not allowed: {connect}"))
                }
                ConnectError::Dns { .. } => {
                    EgressError::network(NetworkReason::Dns, connect.to_string())
                }
                _ => EgressError::network(NetworkReason::Connect, connect.to_string()),
            };
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return EgressError::network(NetworkReason::Tls, format!("TLS: {tls}"));
        }
        if let Some(tls) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return EgressError::network(NetworkReason::Tls, format!("TLS: {tls}"));
        }
        source = current.source();
    }
    let reason = if error.is_connect() {
        NetworkReason::Connect
    } else {
        NetworkReason::Protocol
    };
    EgressError::network(reason, error.to_string())
}
