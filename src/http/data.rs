//! The data plane: `/{tenant}/{route}` → authenticate → the tenant's handler in the sandbox.

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use std::time::{Duration, Instant};

use super::AppState;
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

/// Serves one data-plane request; `segments[0]` is the tenant. Every outcome is counted, and
/// a response the sandbox worked on says how long it and the database took.
pub async fn handle(
    state: &AppState,
    request: Request<Incoming>,
    segments: Vec<String>,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let started = Instant::now();
    let mut trace = Trace::default();
    let mut response = match serve(state, request, segments, request_id, &mut trace).await {
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

async fn serve(
    state: &AppState,
    request: Request<Incoming>,
    segments: Vec<String>,
    request_id: &str,
    trace: &mut Trace,
) -> Result<Response<Body>, Problem> {
    let tenant_name = &segments[0];
    let tenant = state
        .registry
        .tenant(tenant_name)
        .await?
        .ok_or_else(|| Problem::NotFound(format!("no tenant {tenant_name:?}")))?;
    trace.tenant = Some(tenant.name.clone());
    let method = request.method().as_str().to_string();
    if segments.len() == 2 && segments[1] == WHOAMI {
        return whoami(state, &tenant, &request, trace).await;
    }
    let (entry, params) = match tenant.route(&method, &segments[1..]) {
        RouteMatch::Found(entry, params) => (entry.clone(), params),
        RouteMatch::WrongMethod(allowed) => return Err(Problem::MethodNotAllowed(allowed)),
        RouteMatch::NotFound => return Err(Problem::NotFound("no such route".into())),
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
    let guest_request = guest_request(&read.parts, read.body.to_vec(), &segments[1..], params);
    let (database, capabilities) = state.capabilities(&tenant, Some(&entry.endpoint));
    let call = Call {
        tenant: tenant.name.clone(),
        endpoint: entry.endpoint.clone(),
        version: format!("{}-{}", entry.version, entry.script_sha256),
        script: entry.script.clone(),
        isolation: entry.isolation,
        limits: entry.limits,
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
        path: format!("/{}", segments[1..].join("/")),
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
    log.output = reply.output.clone();
    state.logs.record(log);
    let mut response = Response::new(Body::from(reply.response.body));
    *response.status_mut() = StatusCode::from_u16(reply.response.status)
        .map_err(|e| Problem::BadReturn(e.to_string()))?;
    for (name, value) in reply.response.headers {
        // The sandbox validated both; a failure here is a bug, reported as a bad return.
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Problem::BadReturn(e.to_string()))?;
        let value = HeaderValue::from_str(&value).map_err(|e| Problem::BadReturn(e.to_string()))?;
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

/// The path below a tenant that tells a client what its token is, without running any Python.
pub const WHOAMI: &str = "_whoami";

/// `GET /{tenant}/_whoami`: the token's claims once verified, so a client can check its token
/// (and the cost of authentication alone can be measured).
async fn whoami(
    state: &AppState,
    tenant: &TenantView,
    request: &Request<Incoming>,
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
    match jwt::verify(token, &tenant.name, &tenant.jwt_secret, &tenant.revoked) {
        Ok(claims) => Ok(claims),
        Err(error) => {
            if let Some(other) = jwt::claimed_tenant(token).filter(|aud| *aud != tenant.name)
                && let Some(other) = state.registry.tenant(&other).await?
                && jwt::verify(token, &other.name, &other.jwt_secret, &other.revoked).is_ok()
            {
                return Err(
                    AuthError::Forbidden("this token belongs to another tenant".into()).into(),
                );
            }
            Err(error.into())
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
