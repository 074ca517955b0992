//! The data plane: `/{tenant}/{route}` → authenticate → the tenant's handler in the sandbox.

use bytes::Bytes;
use hyper::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use std::time::{Duration, Instant};

use super::AppState;
use super::confine::{TenantOrigin, confine};
use super::metrics::{RequestLabels, RequestRecord, limit_kind};
use super::respond::{Body, Problem};
use super::server::read_body;
use crate::auth::{AuthError, jwt};
use crate::control::model::AuthMode;

use crate::control::model::LogEntry;
use crate::control::registry::{RouteMatch, TenantView};
use crate::host::GuestRequest;
use crate::sandbox::{Call, CallErrorKind};

/// What the metrics and the `Server-Timing` header need to know of one request.
#[derive(Default)]
struct Trace {
    /// The tenant, once known to exist.
    tenant: Option<String>,
    endpoint: String,
    sandbox: Option<Duration>,
    db: Duration,
    reused_instance: Option<bool>,
    limit: Option<&'static str>,
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
}

/// The answer for an unknown tenant and for an unknown route of a known one alike: a caller
/// without a token must not learn which tenants exist.
pub fn no_such_endpoint() -> Problem {
    Problem::NotFound("no such endpoint".into())
}

/// Serves one data-plane request. Every outcome is counted, and a response the sandbox worked
/// on says how long it and the database took.
pub async fn handle<B>(
    state: &AppState,
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
        let timing = format!(
            "sandbox;dur={:.3}, db;dur={:.3}",
            sandbox.as_secs_f64() * 1e3,
            trace.db.as_secs_f64() * 1e3
        );
        if let Ok(value) = HeaderValue::from_str(&timing) {
            response.headers_mut().insert("server-timing", value);
        }
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
    });
    Ok(response)
}

async fn serve<B>(
    state: &AppState,
    request: Request<B>,
    address: TenantAddress,
    request_id: &str,
    trace: &mut Trace,
) -> Result<Response<Body>, Problem>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let route = &address.route;
    let tenant = state
        .registry
        .tenant(&address.tenant)
        .await?
        .ok_or_else(no_such_endpoint)?;
    trace.tenant = Some(tenant.name.clone());
    let method = request.method().as_str().to_string();
    if route.len() == 1 && route[0] == WHOAMI {
        return whoami(state, &tenant, &request, trace).await;
    }
    let (entry, params) = match tenant.route(&method, route) {
        RouteMatch::Found(entry, params) => (entry.clone(), params),
        RouteMatch::WrongMethod(allowed) => return Err(Problem::MethodNotAllowed(allowed)),
        RouteMatch::NotFound => return Err(no_such_endpoint()),
    };
    trace.endpoint = entry.endpoint.clone();
    if entry.auth == AuthMode::Jwt {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let claims = authenticate(state, &tenant, jwt::bearer_token(header)?).await?;
        jwt::may_call(&claims, &entry.endpoint)?;
    }
    let caps = state.caps_for(&tenant.limits);
    let semaphore = state.tenant_semaphore(&tenant.name, caps.max_concurrency);
    let Ok(_permit) = semaphore.try_acquire() else {
        trace.limit = Some("concurrency");
        return Err(Problem::TooManyRequests);
    };

    let read = read_body(
        request,
        caps.max_body_bytes,
        state.server_limits.body_timeout,
    )
    .await?;
    let guest_request = guest_request(&read.parts, read.body.to_vec(), route, params);
    let (database, capabilities) = state.capabilities(&tenant, Some(&entry.endpoint));
    let call = Call {
        tenant: tenant.name.clone(),
        endpoint: entry.endpoint.clone(),
        version: entry.version.to_string(),
        script: entry.script.clone(),
        isolation: entry.isolation,
        limits: tenant.limits.cap(entry.limits),
        request: guest_request,
        capabilities,
    };
    let started = Instant::now();
    let outcome = state.sandbox.handle(call).await;
    trace.sandbox = Some(started.elapsed());
    // A transaction the handler left open ends here, rolled back.
    database.finish().await;
    trace.db = database.time_spent();
    let mut log = LogEntry {
        id: None,
        tenant: tenant.name.clone(),
        endpoint: entry.endpoint.clone(),
        version: entry.version,
        request_id: request_id.to_string(),
        method: method.clone(),
        path: format!("/{}", route.join("/")),
        status: 200,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        output: String::new(),
        error: None,
        traceback: None,
        created_at: None,
    };
    let reply = match outcome {
        Ok(reply) => reply,
        Err(error) => {
            trace.limit = limit_kind(&error.kind);
            // The tenant's logs get the details; the client gets the request id only.
            log.output = error.output.clone();
            log.error = Some(error.kind.to_string());
            if let CallErrorKind::Exception(report) | CallErrorKind::Syntax(report) = &error.kind {
                log.traceback = report.traceback.clone();
            }
            let problem = Problem::from(error);
            log.status = problem.status().as_u16();
            state.logs.record(log);
            return Err(problem);
        }
    };
    trace.reused_instance = Some(reply.reused_instance);
    log.status = reply.response.status;
    log.output = reply.output;
    let mut response = Response::new(Body::from(reply.response.body));
    // The sandbox refused 1xx statuses, header names that are not tokens, control characters
    // in values and framing headers: a failure here is a host bug.
    *response.status_mut() = StatusCode::from_u16(reply.response.status)
        .map_err(|e| Problem::Internal(format!("guest response status: {e}")))?;
    for (name, value) in reply.response.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Problem::Internal(format!("guest response header name: {e}")))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|e| Problem::Internal(format!("guest response header value: {e}")))?;
        response.headers_mut().append(name, value);
    }
    let origin = if address.own_host {
        TenantOrigin::OwnHost
    } else {
        TenantOrigin::SharedPath(&tenant.name)
    };
    let notes = confine(response.headers_mut(), origin, state.tenant_csp.as_ref());
    for note in notes {
        if !log.output.is_empty() && !log.output.ends_with('\n') {
            log.output.push('\n');
        }
        log.output.push_str(&note);
        log.output.push('\n');
    }
    state.logs.record(log);
    Ok(response)
}

/// The path below a tenant that tells a client what its token is, without running any Python.
pub const WHOAMI: &str = "_whoami";

/// `GET /{tenant}/_whoami`: the token's claims once verified, so a client can check its token
/// (and the cost of authentication alone can be measured).
async fn whoami<B>(
    state: &AppState,
    tenant: &TenantView,
    request: &Request<B>,
    trace: &mut Trace,
) -> Result<Response<Body>, Problem> {
    trace.endpoint = WHOAMI.into();
    if request.method() != hyper::Method::GET {
        return Err(Problem::MethodNotAllowed(vec!["GET".into()]));
    }
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let claims = authenticate(state, tenant, jwt::bearer_token(header)?).await?;
    Ok(super::router::json_response(
        StatusCode::OK,
        &serde_json::json!({"tenant": claims.aud, "sub": claims.sub, "jti": claims.jti,
                            "exp": claims.exp, "admin": claims.admin, "endpoints": claims.endpoints}),
    ))
}

/// Verifies a data-plane token. A valid token of another tenant is a 403, not a 401.
async fn authenticate(
    state: &AppState,
    tenant: &TenantView,
    token: &str,
) -> Result<jwt::Claims, Problem> {
    match state.verify_token(tenant, token).await {
        Ok(claims) => Ok(claims),
        Err(error) => {
            if let Some(other) = jwt::claimed_tenant(token).filter(|aud| *aud != tenant.name)
                && let Some(other) = state.registry.tenant(&other).await?
                && state.verify_token(&other, token).await.is_ok()
            {
                return Err(
                    AuthError::Forbidden("this token belongs to another tenant".into()).into(),
                );
            }
            Err(error)
        }
    }
}

/// The request a handler sees: method, full URL, the path below the tenant, the raw query,
/// the headers (a repeated name's values together, in arrival order), the route's parameters
/// and the body. Public only for the fuzz targets (fuzz/), which feed it arbitrary requests.
#[doc(hidden)]
pub fn guest_request(
    parts: &hyper::http::request::Parts,
    body: Vec<u8>,
    route_segments: &[String],
    path_params: std::collections::BTreeMap<String, String>,
) -> GuestRequest {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    GuestRequest {
        method: parts.method.as_str().to_string(),
        url: format!("{scheme}://{host}{path_and_query}"),
        path: format!("/{}", route_segments.join("/")),
        query_string: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        path_params,
        body,
    }
}
