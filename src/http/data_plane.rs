//! The data plane's adapter: `/{tenant}/{route}` (or `{tenant}.<domain>/{route}`) → admission
//! and the handler (`app::invoke`) → the response, confined to its tenant, timed and counted.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::HttpState;
use super::confine::{TenantOrigin, confine};
use super::cors;
use super::metrics::{RequestLabels, RequestRecord, limit_kind};
use super::respond::{Body, Problem};
use super::server::read_body;
use crate::app::AppError;
use crate::app::invoke::guest_request;
use crate::app::openapi::check_request_body;
use crate::auth::jwt;
use crate::control::route::OPENAPI_DOCUMENT;

/// What the metrics and the `Server-Timing` header need to know of one request.
#[derive(Default)]
struct Trace {
    /// The tenant, once known to exist.
    tenant: Option<String>,
    endpoint: String,
    sandbox: Option<Duration>,
    db: Duration,
    reused_instance: Option<bool>,
    snapshot_load: Option<(crate::sandbox::SnapshotSource, Duration)>,
    limit: Option<&'static str>,
    egress: Vec<crate::egress::EgressCall>,
    /// What the handler's call used, if one ran.
    usage: Option<crate::control::model::Usage>,
    /// Whether any origin may read the response (the tenant's OpenAPI document).
    cross_origin: bool,
}

/// Which tenant a request is for, and the route below it.
#[derive(Debug, Clone)]
pub struct TenantAddress {
    /// The tenant's name, as the request gave it.
    pub tenant: String,
    /// The path's segments below the tenant.
    pub route: Vec<String>,
    /// Whether the tenant was named by the host (`{tenant}.<domain>`): an origin of its own.
    pub own_host: bool,
    /// The connection's peer (none for a request made inside the server, the console's try).
    pub peer: Option<std::net::IpAddr>,
}

/// The client's address: the peer, unless the peer is a trusted proxy, whose
/// `X-Forwarded-For` is then read from its right end to the first address not itself trusted.
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    forwarded_for: &[&str],
    trusted: &[std::net::IpAddr],
) -> String {
    let Some(mut client) = peer else {
        return String::new();
    };
    let chain = forwarded_for
        .iter()
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .filter_map(|hop| hop.parse::<std::net::IpAddr>().ok())
        .collect::<Vec<_>>();
    for hop in chain.into_iter().rev() {
        if !trusted.contains(&client) {
            break;
        }
        client = hop;
    }
    client.to_string()
}

/// Serves one data-plane request. Every outcome is counted, and a response the sandbox worked
/// on says how long it and the database took.
pub async fn handle<B>(
    state: &HttpState,
    request: Request<B>,
    address: TenantAddress,
    request_id: &str,
) -> Result<Response<Body>, Problem>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let mut trace = Trace::default();
    let mut response = match serve(state, request, address, request_id, &mut trace).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(request_id),
    };
    if let Some(sandbox) = trace.sandbox {
        let egress: std::time::Duration = trace.egress.iter().map(|call| call.duration).sum();
        let mut timing = format!(
            "sandbox;dur={:.3}, db;dur={:.3}, egress;dur={:.3}",
            sandbox.as_secs_f64() * 1e3,
            trace.db.as_secs_f64() * 1e3,
            egress.as_secs_f64() * 1e3
        );
        // A call that had to load its tenant's snapshot says so, and what it cost.
        // What the call is metered by: CPU time, and the instance's peak memory in bytes.
        if let Some(usage) = &trace.usage {
            timing.push_str(&format!(
                ", cpu;dur={:.3}, mem;desc={}",
                usage.cpu_us as f64 / 1e3,
                usage.peak_memory_bytes
            ));
        }
        if let Some((source, took)) = trace.snapshot_load {
            let source = match source {
                crate::sandbox::SnapshotSource::Built => "built",
                _ => "disk",
            };
            timing.push_str(&format!(
                ", snapshot;desc={source};dur={:.3}",
                took.as_secs_f64() * 1e3
            ));
        }
        if let Ok(value) = HeaderValue::from_str(&timing) {
            response.headers_mut().insert("server-timing", value);
        }
    }
    // Tools in other origins read the document, and its errors (see `cors`).
    if trace.cross_origin {
        cors::allow_any_origin(response.headers_mut());
    }
    state.metrics.record(RequestRecord {
        labels: RequestLabels {
            tenant: trace.tenant.unwrap_or_else(|| "_unknown".into()),
            endpoint: trace.endpoint,
            status: response.status().as_u16(),
        },
        total: started.elapsed(),
        sandbox: trace.sandbox,
        db: trace.db,
        reused_instance: trace.reused_instance,
        limit: trace.limit,
        egress: &trace.egress,
        usage: trace.usage.as_ref(),
    });
    Ok(response)
}

async fn serve<B>(
    state: &HttpState,
    request: Request<B>,
    address: TenantAddress,
    request_id: &str,
    trace: &mut Trace,
) -> Result<Response<Body>, Problem>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let app = &state.app;
    let tenant = app.tenant_view(&address.tenant).await?;
    trace.tenant = Some(tenant.name.clone());
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if address.route.len() == 1 && address.route[0] == WHOAMI {
        trace.endpoint = WHOAMI.into();
        if request.method() != hyper::Method::GET {
            return Err(Problem::MethodNotAllowed(vec!["GET".into()]));
        }
        let claims = app
            .verify_data_token(&tenant, jwt::bearer_token(authorization)?)
            .await?;
        return Ok(super::router::json_response(
            StatusCode::OK,
            &serde_json::json!({"tenant": claims.aud, "sub": claims.sub, "jti": claims.jti,
                                "exp": claims.exp, "admin": claims.admin,
                                "endpoints": claims.endpoints}),
        ));
    }
    if address.route.len() == 1 && address.route[0] == OPENAPI_DOCUMENT {
        trace.endpoint = OPENAPI_DOCUMENT.into();
        trace.cross_origin = true;
        if request.method() == hyper::Method::OPTIONS {
            return Ok(cors::preflight());
        }
        if request.method() != hyper::Method::GET {
            return Err(Problem::MethodNotAllowed(vec![
                "GET".into(),
                "OPTIONS".into(),
            ]));
        }
        let server = if address.own_host {
            "/".to_string()
        } else {
            format!("/{}", tenant.name)
        };
        let document = app.openapi(&tenant, authorization, &server).await?;
        return Ok(super::router::json_response(StatusCode::OK, &document));
    }
    let method = request.method().as_str().to_string();
    let admitted = match app
        .admit(tenant.clone(), &method, &address.route, authorization)
        .await
    {
        Ok(admitted) => admitted,
        Err(error) => {
            if matches!(error, AppError::TooManyRequests) {
                trace.limit = Some("concurrency");
            }
            return Err(error.into());
        }
    };
    trace.endpoint = admitted.entry.endpoint.clone();
    let read = read_body(
        request,
        admitted.max_body_bytes,
        state.server_limits.body_timeout,
    )
    .await?;
    // A declared request schema is the host's to apply: a body that misses it never reaches
    // the handler.
    if let Some(schema) = &admitted.entry.request_schema {
        let content_type = read.parts.headers.get(CONTENT_TYPE);
        check_request_body(
            schema,
            content_type.and_then(|v| v.to_str().ok()),
            &read.body,
        )?;
    }
    let params = admitted.params.clone();
    let forwarded: Vec<&str> = read
        .parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let remote_addr = client_address(address.peer, &forwarded, &state.trusted_proxies);
    let mut guest = guest_request(&read.parts, read.body.to_vec(), &address.route, params);
    guest.remote_addr = remote_addr;
    let invocation = app.invoke(admitted, guest, request_id).await;
    trace.sandbox = Some(invocation.run.sandbox_time);
    trace.db = invocation.run.db_time;
    trace.egress = invocation.run.egress.clone();
    let (response, notes) = match &invocation.run.outcome {
        Ok(reply) => {
            trace.reused_instance = Some(reply.reused_instance);
            trace.snapshot_load = reply.snapshot_load;
            // The body follows once the call is logged.
            let mut response = Response::new(Body::default());
            // The sandbox refused 1xx statuses, header names that are not tokens, control
            // characters in values and framing headers: a failure here is a host bug.
            *response.status_mut() = StatusCode::from_u16(reply.response.status)
                .map_err(|e| Problem::Internal(format!("guest response status: {e}")))?;
            for (name, value) in &reply.response.headers {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| Problem::Internal(format!("guest response header: {e}")))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|e| Problem::Internal(format!("guest response header: {e}")))?;
                response.headers_mut().append(name, value);
            }
            let origin = if address.own_host {
                TenantOrigin::OwnHost
            } else {
                TenantOrigin::SharedPath(&tenant.name)
            };
            let notes = confine(response.headers_mut(), origin, state.tenant_csp.as_ref());
            (Ok(response), notes)
        }
        Err(error) => {
            trace.limit = limit_kind(&error.kind);
            // The tenant's logs get the details; the client gets the request id only.
            (Err(Problem::for_call(&error.kind)), Vec::new())
        }
    };
    let status = match &response {
        Ok(response) => response.status(),
        Err(problem) => problem.status(),
    };
    let (outcome, usage) = invocation.record(app, status.as_u16(), &notes);
    trace.usage = Some(usage);
    let mut response = response?;
    if let Ok(reply) = outcome {
        *response.body_mut() = Body::from(reply.response.body);
    }
    Ok(response)
}

/// The path below a tenant that tells a client what its token is, without running any Python.
pub const WHOAMI: &str = "_whoami";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        let proxy = [ip("10.0.0.1")];
        // An untrusted peer is the client, whatever it forwards.
        assert_eq!(
            client_address(Some(ip("198.51.100.7")), &["1.2.3.4"], &proxy),
            "198.51.100.7"
        );
        // The proxy's last hop is the client; what the client itself claimed further left is not.
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &["6.6.6.6, 203.0.113.9"], &proxy),
            "203.0.113.9"
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &["junk"], &proxy),
            "10.0.0.1"
        );
        assert_eq!(client_address(None, &[], &proxy), "");
    }
}
