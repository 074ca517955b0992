//! The hyper front end: accept loop, per-connection protocol limits and timeouts, request
//! body caps, request ids, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::respond::{Body, Problem};
use super::{HttpState, router};

/// Protocol limits of the front end.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time to receive a request's headers (slowloris gets no further).
    pub header_timeout: Duration,
    /// Time to receive a request's body.
    pub body_timeout: Duration,
    /// Most request headers.
    pub max_headers: usize,
    /// Largest buffered request head, in bytes.
    pub max_header_bytes: usize,
    /// Open connections at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// After shutdown begins, time in-flight requests have to finish before their
    /// connections are cut: inside the orchestrator's grace period (Kubernetes' default is
    /// 30 s), so the process exits on its own rather than by SIGKILL.
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_headers: 100,
            max_header_bytes: 64 << 10,
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(25),
        }
    }
}

/// What one listener serves. Tenants' pages are hostile: in a browser, whatever shares an
/// origin with them is theirs to reach, so the admin API and console can have a listener (an
/// origin) of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Tenants' endpoints and the admin API together (`serve` without `--admin-listen`).
    All,
    /// Tenants' endpoints only.
    Data,
    /// The admin API, the console and `/metrics` only.
    Admin,
}

impl Surface {
    /// Whether `/admin/v1`, `/console/` and `/metrics` are served here.
    pub fn serves_admin(self) -> bool {
        matches!(self, Surface::All | Surface::Admin)
    }

    /// Whether tenants' endpoints are served here.
    pub fn serves_data(self) -> bool {
        matches!(self, Surface::All | Surface::Data)
    }
}

/// A request with its body read, within limits.
pub struct ReadRequest {
    /// Method, URI, headers.
    pub parts: hyper::http::request::Parts,
    /// The body.
    pub body: Bytes,
}

/// Serves `surface` until `shutdown` completes, then stops accepting and waits for in-flight
/// requests, at most [`ServerLimits::drain_timeout`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    surface: Surface,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = state.server_limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            // A client that connects and sends nothing holds a connection slot, and hyper's
            // header timeout only starts with the first byte: it gets the same time to start.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_timeout, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                drop(permit);
                return;
            }
            let service = service_fn(move |request| handle(state.clone(), surface, peer, request));
            // No upgrades: no endpoint speaks another protocol, and a handler answering 101
            // must never turn the connection into a tunnel.
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(connection.into_owned()).await;
            drop(permit);
        });
    }
    drop(listener);
    // Idle keep-alive connections close now; busy ones after their response.
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after the drain timeout ({} s): cutting their connections",
            limits.drain_timeout.as_secs()
        );
    }
    Ok(())
}

async fn handle(
    state: Arc<HttpState>,
    surface: Surface,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let request_id = new_request_id();
    let span = tracing::info_span!("request", request_id = %request_id);
    async move {
        let started = std::time::Instant::now();
        // The path only: a query string may carry what logs must never hold.
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        let mut response = match router::route(&state, surface, peer, request, &request_id).await {
            Ok(response) => response,
            Err(problem) => problem.into_response(&request_id),
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        tracing::info!(
            %method,
            path = %path.chars().take(256).collect::<String>(),
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1e3,
            "served"
        );
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Reads the whole body, refusing more than `max_bytes` or a client slower than the body
/// timeout.
pub async fn read_body<B>(
    request: Request<B>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<ReadRequest, Problem>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    if let Some(length) = parts.headers.get(hyper::header::CONTENT_LENGTH) {
        let length: usize = length
            .to_str()
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| Problem::BadRequest("invalid content-length".into()))?;
        if length > max_bytes {
            return Err(Problem::TooLarge(max_bytes));
        }
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, max_bytes).collect())
        .await
        .map_err(|_| Problem::BadRequest("request body not received in time".into()))?;
    match collected {
        Ok(body) => Ok(ReadRequest {
            parts,
            body: body.to_bytes(),
        }),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Problem::TooLarge(max_bytes))
        }
        Err(e) => Err(Problem::BadRequest(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn new_request_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
