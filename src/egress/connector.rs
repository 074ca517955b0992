//! The TCP connector under every outbound connection: it resolves the name once, refuses the
//! connection if any address it resolved to is internal ([`super::address`]), and connects to
//! one of exactly the addresses it checked. Nothing resolves the name a second time, so a DNS
//! answer that changes between a check and a connect (rebinding) gains nothing.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::address;

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The destination resolves to an address handlers may not reach.
    #[error("{host} resolves to {ip}, {why}, which handlers may not reach")]
    Denied {
        /// The host as named.
        host: String,
        /// The refused address.
        ip: IpAddr,
        /// What kind of address it is.
        why: &'static str,
    },
    /// The name did not resolve.
    #[error("cannot resolve {host}: {message}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's words.
        message: String,
    },
    /// No checked address accepted a connection.
    #[error("cannot connect to {host}: {source}")]
    Connect {
        /// The host.
        host: String,
        /// The last attempt's error.
        source: std::io::Error,
    },
    /// The URI had no host (a bug upstream: URLs are checked before they get here).
    #[error("no host in {0}")]
    NoHost(String),
}

/// A `tower` service from a URI to a TCP stream to a checked address.
#[derive(Debug, Clone, Copy)]
pub struct CheckedConnector {
    /// Whether loopback addresses may be reached (`serve --egress-allow-loopback`).
    pub allow_loopback: bool,
}

impl tower_service::Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| ConnectError::NoHost(uri.to_string()))?
                .to_string();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            let (addresses, literal) = resolve(&host, port).await?;
            // The loopback flag opens names that resolve to loopback (a test's `localhost`),
            // never a loopback address written into a URL.
            let allow_loopback = allow_loopback && !literal;
            for address in &addresses {
                if let Some(why) = address::refusal(address.ip(), allow_loopback) {
                    return Err(ConnectError::Denied {
                        host,
                        ip: address.ip(),
                        why,
                    });
                }
            }
            connect(&host, &addresses).await
        })
    }
}

/// The host's addresses: itself when it is one (`[v6]` as the URI writes it; then `true`),
/// else the system resolver's answer.
async fn resolve(host: &str, port: u16) -> Result<(Vec<SocketAddr>, bool), ConnectError> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, port)], true));
    }
    let dns = |message: String| ConnectError::Dns {
        host: host.to_string(),
        message,
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| dns(e.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(dns("no addresses".into()));
    }
    Ok((addresses, false))
}

async fn connect(host: &str, addresses: &[SocketAddr]) -> Result<TokioIo<TcpStream>, ConnectError> {
    let mut last = std::io::Error::other("no address");
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Requests are small and answered at once; Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                return Ok(TokioIo::new(stream));
            }
            Err(e) => last = e,
        }
    }
    Err(ConnectError::Connect {
        host: host.to_string(),
        source: last,
    })
}
